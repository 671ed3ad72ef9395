# Redis (ElastiCache, cluster mode) for live state, PostgreSQL (RDS) for the archive, and the secret that
# hands their addresses and credentials to the tasks.

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "random_password" "jwt" {
  length  = 64
  special = false
}

# The bidder's admin token (operator calls such as the rebuild's RestoreItem).
resource "random_password" "admin" {
  length  = 64
  special = false
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${var.name}-redis"
  subnet_ids = var.private_subnet_ids
}

# Cluster mode: the key space is split into hash slots over `redis_shards` primaries. Every key of an
# item shares the hash tag of its outbox partition, so each Lua call touches one shard.
resource "aws_elasticache_replication_group" "redis" {
  replication_group_id       = "${var.name}-redis"
  description                = "Auction live state (cluster mode)"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  port                       = 6379
  parameter_group_name       = "default.redis7.cluster.on"
  num_node_groups            = var.redis_shards
  replicas_per_node_group    = var.redis_replicas_per_shard
  automatic_failover_enabled = true
  multi_az_enabled           = var.redis_replicas_per_shard > 0
  subnet_group_name          = aws_elasticache_subnet_group.redis.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth.result
  snapshot_retention_limit   = 1
}

resource "aws_db_subnet_group" "archive" {
  name       = "${var.name}-archive"
  subnet_ids = var.private_subnet_ids
}

resource "aws_db_instance" "archive" {
  identifier                 = "${var.name}-archive"
  engine                     = "postgres"
  engine_version             = var.db_engine_version
  instance_class             = var.db_instance_class
  allocated_storage          = var.db_allocated_storage
  max_allocated_storage      = var.db_allocated_storage * 4
  storage_type               = "gp3"
  storage_encrypted          = true
  db_name                    = "auction"
  username                   = "auction"
  password                   = random_password.db.result
  multi_az                   = var.db_multi_az
  db_subnet_group_name       = aws_db_subnet_group.archive.name
  vpc_security_group_ids     = [aws_security_group.postgres.id]
  publicly_accessible        = false
  backup_retention_period    = 7
  auto_minor_version_upgrade = true
  deletion_protection        = var.deletion_protection
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${var.name}-archive-final"
}

# One secret, one JSON document; task definitions pick keys out of it ("<arn>:<key>::").
resource "aws_secretsmanager_secret" "runtime" {
  name                    = "${var.name}/runtime"
  description             = "Auction platform: JWT secret, bidder admin token and data store URLs with credentials"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "runtime" {
  secret_id = aws_secretsmanager_secret.runtime.id
  secret_string = jsonencode({
    jwt_secret   = random_password.jwt.result
    admin_token  = random_password.admin.result
    redis_url    = "rediss://:${random_password.redis_auth.result}@${aws_elasticache_replication_group.redis.configuration_endpoint_address}:6379/0"
    postgres_dsn = "postgresql://auction:${random_password.db.result}@${aws_db_instance.archive.address}:5432/auction?sslmode=require"
  })
}
