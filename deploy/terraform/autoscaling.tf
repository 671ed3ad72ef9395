# Target tracking: every stateless service on CPU; the edge also on requests per task, the fan-out on
# open WebSocket connections per task. Relay and archiver are scaled by hand (their work is bounded
# by partitions and by Postgres, not by CPU).

locals {
  cpu_scaled = toset(["bidder", "edge", "fanout"])
}

resource "aws_appautoscaling_target" "service" {
  for_each = local.cpu_scaled

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.service[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.services[each.key].min_count
  max_capacity       = var.services[each.key].max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each = local.cpu_scaled

  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.service[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.service[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "edge_requests" {
  name               = "${var.name}-edge-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["edge"].service_namespace
  resource_id        = aws_appautoscaling_target.service["edge"].resource_id
  scalable_dimension = aws_appautoscaling_target.service["edge"].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.edge_requests_per_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.public["edge"].arn_suffix}/${aws_lb_target_group.public["edge"].arn_suffix}"
    }
  }
}

# Connections per fan-out task = the fan-out ALB's active connections (client side and target side,
# hence / 2) over the running tasks. Scale-in is slow: it closes sockets (1012) and viewers reconnect.
resource "aws_appautoscaling_policy" "fanout_connections" {
  name               = "${var.name}-fanout-connections"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["fanout"].service_namespace
  resource_id        = aws_appautoscaling_target.service["fanout"].resource_id
  scalable_dimension = aws_appautoscaling_target.service["fanout"].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.fanout_connections_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 600

    customized_metric_specification {
      metrics {
        id          = "connections"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/ApplicationELB"
            metric_name = "ActiveConnectionCount"
            dimensions {
              name  = "LoadBalancer"
              value = aws_lb.public["fanout"].arn_suffix
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.service["fanout"].name
            }
          }
        }
      }

      metrics {
        id          = "per_task"
        label       = "WebSocket connections per fan-out task"
        expression  = "connections / 2 / tasks"
        return_data = true
      }
    }
  }
}
