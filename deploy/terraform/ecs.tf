# The ECS cluster, service discovery, roles, and one task definition + service per platform service,
# all from one image and one table (local.services).

locals {
  public_services = toset(["edge", "fanout"])
  secret          = aws_secretsmanager_secret.runtime.arn
  # Every node as a seed (comma-separated), so relay and archiver start even with one node down.
  nats_url = join(",", [
    for i in range(local.nats_nodes) : "nats://nats-${i}.${aws_service_discovery_private_dns_namespace.internal.name}:4222"
  ])

  # Per service: its container port, the port's Service Connect name and protocol, its environment,
  # its secrets (keys of the runtime secret), and how long it gets between SIGTERM and SIGKILL.
  services = {
    bidder = {
      port         = 50051
      port_name    = "bidder"
      app_protocol = "grpc"
      stop_timeout = 30
      environment = {
        BIDDER_HOST           = "0.0.0.0"
        BIDDER_PORT           = "50051"
        BIDDER_METRICS_PORT   = "9100"
        BIDDER_PARTITIONS     = tostring(var.partitions)
        BIDDER_SHARDED_PUBSUB = "true"
        BIDDER_REDIS_CLUSTER  = "true"
        BIDDER_LOG_JSON       = "true"
      }
      secrets = { BIDDER_REDIS_URL = "redis_url", BIDDER_ADMIN_TOKEN = "admin_token" }
    }
    edge = {
      port         = 8080
      port_name    = "edge"
      app_protocol = "http"
      stop_timeout = 30
      environment = {
        EDGE_HOST                   = "0.0.0.0"
        EDGE_PORT                   = "8080"
        EDGE_BIDDER_TARGET          = "bidder:50051"
        EDGE_HISTORY_TARGET         = "archiver:50052"
        EDGE_ENVIRONMENT            = "production"
        EDGE_SHUTDOWN_GRACE_SECONDS = "15"
      }
      secrets = { AUCTION_JWT_SECRET = "jwt_secret" }
    }
    fanout = {
      port         = 8081
      port_name    = "fanout"
      app_protocol = "http"
      # Fargate allows at most 120 s; closing every socket with 1012 needs far less.
      stop_timeout = 60
      environment = {
        FANOUT_HOST                     = "0.0.0.0"
        FANOUT_PORT                     = "8081"
        FANOUT_BIDDER_TARGET            = "bidder:50051"
        FANOUT_PARTITIONS               = tostring(var.partitions)
        FANOUT_REDIS_CLUSTER            = "true"
        FANOUT_SHARDED_PUBSUB           = "true"
        FANOUT_ALLOWED_ORIGINS          = var.fanout_allowed_origins
        FANOUT_SHUTDOWN_TIMEOUT_SECONDS = "20"
        FANOUT_LOG_JSON                 = "true"
      }
      secrets = { FANOUT_REDIS_URL = "redis_url" }
    }
    relay = {
      port         = 8090
      port_name    = "relay"
      app_protocol = "http"
      stop_timeout = 30
      environment = {
        RELAY_HOST            = "0.0.0.0"
        RELAY_PORT            = "8090"
        RELAY_NATS_URL        = local.nats_url
        RELAY_PARTITIONS      = tostring(var.partitions)
        RELAY_STREAM_REPLICAS = "3"
        RELAY_REDIS_CLUSTER   = "true"
        RELAY_LOG_JSON        = "true"
      }
      secrets = { RELAY_REDIS_URL = "redis_url" }
    }
    archiver = {
      port         = 50052
      port_name    = "archiver"
      app_protocol = "grpc"
      stop_timeout = 30
      environment = {
        ARCHIVER_HOST          = "0.0.0.0"
        ARCHIVER_PORT          = "50052"
        ARCHIVER_METRICS_PORT  = "9100"
        ARCHIVER_NATS_URL      = local.nats_url
        ARCHIVER_BIDDER_TARGET = "bidder:50051"
        ARCHIVER_LOG_JSON      = "true"
      }
      # The admin token is for the rebuild command run in an archiver task (ECS Exec or a one-off task).
      secrets = { ARCHIVER_POSTGRES_DSN = "postgres_dsn", ARCHIVER_BIDDER_ADMIN_TOKEN = "admin_token" }
    }
  }

  # Services others call by name through Service Connect (an Envoy sidecar that balances every gRPC
  # request over the healthy tasks, so one edge's long-lived channel still reaches every bidder).
  called_services = toset(["bidder", "archiver"])
}

resource "aws_ecs_cluster" "main" {
  name = var.name

  # Container Insights publishes RunningTaskCount, used by the fan-out's connections-per-task scaling.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# Service Connect namespace (bidder, archiver) and a private DNS namespace for the NATS nodes, whose
# cluster routes need one stable name per node.
resource "aws_service_discovery_http_namespace" "services" {
  name        = "${var.name}-services"
  description = "Service Connect names of the auction platform"
}

resource "aws_service_discovery_private_dns_namespace" "internal" {
  name        = "${var.name}.internal"
  description = "Stable DNS names of the NATS nodes"
  vpc         = var.vpc_id
}

resource "aws_cloudwatch_log_group" "service" {
  for_each = toset(concat(keys(local.services), ["nats"]))

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Used by ECS itself: pull the image, write logs, read the runtime secret into the environment.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_runtime_secret" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.runtime.arn]
  }
}

resource "aws_iam_role_policy" "read_runtime_secret" {
  name   = "read-runtime-secret"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_runtime_secret.json
}

# Used by the containers: only the NATS tasks need anything (EFS with IAM authorization).
resource "aws_iam_role" "task" {
  name               = "${var.name}-ecs-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_ecs_task_definition" "service" {
  for_each = local.services

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.services[each.key].cpu)
  memory                   = tostring(var.services[each.key].memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Task storage for /tmp: the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = var.image
    essential              = true
    command                = [each.key]
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    stopTimeout            = each.value.stop_timeout
    portMappings = [{
      name          = each.value.port_name
      containerPort = each.value.port
      protocol      = "tcp"
      appProtocol   = each.value.app_protocol
    }]
    environment = [for key, value in each.value.environment : { name = key, value = value }]
    secrets     = [for key, field in each.value.secrets : { name = key, valueFrom = "${local.secret}:${field}::" }]
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters = {
      capabilities = { drop = ["ALL"] }
    }
    # Liveness: ECS replaces a task that fails it, so it must not fail for a dependency's outage
    # (the load balancer's health check and gRPC health handle readiness).
    healthCheck = {
      command     = ["CMD", "python", "/app/healthcheck.py", "--live", each.key]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

resource "aws_ecs_service" "service" {
  for_each = local.services

  name                              = each.key
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.service[each.key].arn
  desired_count                     = var.services[each.key].desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = contains(local.public_services, each.key) ? 60 : null

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = contains(local.public_services, each.key) ? [each.key] : []
    content {
      target_group_arn = aws_lb_target_group.public[load_balancer.value].arn
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  # Every service is a Service Connect client (it resolves `bidder` and `archiver`); those two serve.
  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.services.arn

    dynamic "service" {
      for_each = contains(local.called_services, each.key) ? [each.value] : []
      content {
        port_name      = service.value.port_name
        discovery_name = each.key
        client_alias {
          port     = service.value.port
          dns_name = each.key
        }
      }
    }
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Autoscaling owns the task count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.http, aws_ecs_service.nats]
}
