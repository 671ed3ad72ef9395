# Security groups: internet -> load balancers -> tasks -> Redis, Postgres, EFS. Tasks talk to each
# other (gRPC, NATS client and cluster routes) inside their own group.

resource "aws_security_group" "alb" {
  for_each = local.public_services

  name        = "${var.name}-${each.key}-alb"
  description = "Internet to the ${each.key} load balancer"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTPS / WSS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.allowed_ingress_cidrs
  }

  ingress {
    description = "HTTP (redirected to HTTPS when a certificate is set)"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.allowed_ingress_cidrs
  }

  egress {
    description = "To the tasks"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "Every ECS task of the platform"
  vpc_id      = var.vpc_id

  ingress {
    description = "Service to service (gRPC, NATS, metrics)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }

  ingress {
    description     = "Load balancers to edge and fan-out"
    from_port       = 8080
    to_port         = 8081
    protocol        = "tcp"
    security_groups = [for sg in aws_security_group.alb : sg.id]
  }

  egress {
    description = "Redis, Postgres, EFS, and AWS APIs (ECR, logs, Secrets Manager)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "ElastiCache Redis, from the tasks only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Redis (TLS)"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.tasks.id]
  }
}

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "RDS PostgreSQL, from the tasks only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "PostgreSQL"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.tasks.id]
  }
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-efs"
  description = "EFS for JetStream, from the tasks only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "NFS"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [aws_security_group.tasks.id]
  }
}
