output "faas" {
  description = "Read by faas endpoint configure / faas profile create --from-terraform."
  value       = module.site.faas
}

output "store_url" {
  value = module.site.store_url
}

output "queue_urls" {
  value = module.site.queue_urls
}

output "client_role_arn" {
  value = module.site.client_role_arn
}

output "site_role_arns" {
  value = module.site.site_role_arns
}
