output "edge_url" {
  description = "Base URL of the REST API (the edge's load balancer)."
  value       = "${local.https ? "https" : "http"}://${aws_lb.public["edge"].dns_name}"
}

output "fanout_url" {
  description = "Base URL of the WebSocket stream (append /ws/items/{id})."
  value       = "${local.https ? "wss" : "ws"}://${aws_lb.public["fanout"].dns_name}"
}

output "load_balancer_dns_names" {
  description = "DNS names of the edge and fan-out load balancers, for CNAME/alias records."
  value       = { for key, lb in aws_lb.public : key => lb.dns_name }
}

output "ecs_cluster_name" {
  description = "The ECS cluster running every service."
  value       = aws_ecs_cluster.main.name
}

output "ecs_service_names" {
  description = "ECS service names of the platform services and the NATS nodes."
  value       = concat([for service in aws_ecs_service.service : service.name], aws_ecs_service.nats[*].name)
}

output "redis_configuration_endpoint" {
  description = "ElastiCache cluster-mode configuration endpoint (TLS, auth token in the runtime secret)."
  value       = aws_elasticache_replication_group.redis.configuration_endpoint_address
}

output "postgres_address" {
  description = "RDS PostgreSQL host name of the archive."
  value       = aws_db_instance.archive.address
}

output "nats_url" {
  description = "Seed URL of the NATS cluster inside the VPC (clients learn the other nodes from it)."
  value       = local.nats_url
}

output "runtime_secret_arn" {
  description = "Secrets Manager secret with jwt_secret, admin_token, redis_url and postgres_dsn (read by the tasks)."
  value       = aws_secretsmanager_secret.runtime.arn
}
