# Two internet-facing load balancers: one for the REST edge, one for the WebSocket fan-out, so the
# long-lived connections get their own idle timeout and their own connection count (the fan-out's
# scaling signal). No stickiness: any fan-out task serves any viewer, who resumes with `since`.

locals {
  https = var.certificate_arn != ""
  alb_settings = {
    edge   = { port = 8080, health_path = "/readyz", idle_timeout = 60, deregistration_delay = 30 }
    fanout = { port = 8081, health_path = "/healthz", idle_timeout = var.fanout_idle_timeout_seconds, deregistration_delay = 15 }
  }
}

resource "aws_lb" "public" {
  for_each = local.public_services

  name                       = "${var.name}-${each.key}"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb[each.key].id]
  idle_timeout               = local.alb_settings[each.key].idle_timeout
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
}

resource "aws_lb_target_group" "public" {
  for_each = local.public_services

  name                 = "${var.name}-${each.key}"
  port                 = local.alb_settings[each.key].port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = local.alb_settings[each.key].deregistration_delay

  health_check {
    path                = local.alb_settings[each.key].health_path
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  stickiness {
    type    = "lb_cookie"
    enabled = false
  }
}

# Port 80: forwards when there is no certificate, otherwise redirects to HTTPS.
resource "aws_lb_listener" "http" {
  for_each = local.public_services

  load_balancer_arn = aws_lb.public[each.key].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.public[each.key].arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  for_each = local.https ? local.public_services : toset([])

  load_balancer_arn = aws_lb.public[each.key].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.public[each.key].arn
  }
}
