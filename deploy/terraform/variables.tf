# Inputs. The VPC and its subnets are given (most teams already have one); everything else is created.

variable "name" {
  description = "Prefix of every resource name (lowercase letters, digits and dashes)."
  type        = string
  default     = "auction"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC for the platform."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (at least two zones) for the two internet-facing load balancers."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two zones, with a NAT or VPC endpoints for ECR, logs and Secrets Manager) for tasks, Redis, Postgres and EFS."
  type        = list(string)
}

variable "allowed_ingress_cidrs" {
  description = "CIDR blocks allowed to reach the load balancers."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "image" {
  description = "The platform image (deploy/docker/Dockerfile) as repository:tag, preferably pinned by @sha256 digest."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS/WSS on both load balancers; empty serves plain HTTP on port 80 (testing only)."
  type        = string
  default     = ""
}

variable "fanout_allowed_origins" {
  description = "Browser origins allowed to open the WebSocket (FANOUT_ALLOWED_ORIGINS), comma-separated."
  type        = string
}

variable "partitions" {
  description = "Outbox partitions = Redis Cluster hash tags (BIDDER_PARTITIONS, shared by bidder, relay and fan-out). Never change it on live data."
  type        = number
  default     = 64
}

variable "services" {
  description = "Fargate size and scaling bounds per service: cpu units, memory MiB, tasks at creation, autoscaling min and max."
  type = map(object({
    cpu           = number
    memory        = number
    desired_count = number
    min_count     = number
    max_count     = number
  }))
  default = {
    bidder   = { cpu = 1024, memory = 2048, desired_count = 3, min_count = 2, max_count = 40 }
    edge     = { cpu = 1024, memory = 2048, desired_count = 3, min_count = 2, max_count = 60 }
    fanout   = { cpu = 1024, memory = 2048, desired_count = 3, min_count = 2, max_count = 200 }
    relay    = { cpu = 512, memory = 1024, desired_count = 2, min_count = 2, max_count = 8 }
    archiver = { cpu = 1024, memory = 2048, desired_count = 2, min_count = 2, max_count = 8 }
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilization that autoscaling keeps each scaled service at."
  type        = number
  default     = 60
}

variable "edge_requests_per_target" {
  description = "ALB requests per edge task per minute that autoscaling aims for (see the scaling guide in deploy/README.md)."
  type        = number
  default     = 150000
}

variable "fanout_connections_per_task" {
  description = "Open WebSocket connections per fan-out task that autoscaling aims for (see the scaling guide in deploy/README.md)."
  type        = number
  default     = 10000
}

variable "fanout_idle_timeout_seconds" {
  description = "Idle timeout of the fan-out load balancer; above the fan-out's ping interval (20 s) so quiet WebSockets stay open."
  type        = number
  default     = 300
}

variable "redis_node_type" {
  description = "ElastiCache node type for every shard's primary and replicas."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_shards" {
  description = "ElastiCache cluster mode node groups (shards); hash slots, and so items, spread over them."
  type        = number
  default     = 3
}

variable "redis_replicas_per_shard" {
  description = "Replicas per shard for automatic failover (at least 1 in production)."
  type        = number
  default     = 1
}

variable "db_instance_class" {
  description = "RDS instance class for the archive."
  type        = string
  default     = "db.r7g.large"
}

variable "db_engine_version" {
  description = "RDS PostgreSQL major version (15 or later)."
  type        = string
  default     = "17"
}

variable "db_allocated_storage" {
  description = "Initial RDS storage in GiB (grows automatically up to four times this)."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Run the RDS instance Multi-AZ (a standby in another zone)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the load balancers and the database from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for every service's log group."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
