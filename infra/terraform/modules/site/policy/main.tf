# Names, ARNs and the IAM policy documents of a faas site: the clients' one and one per endpoint.
# Every action below is one the faas code calls (tests/test_terraform.py records them all against
# a moto server and proves these documents allow exactly those, on exactly these resources).
#
# boto3 operation -> IAM action: HeadObject and GetObject -> s3:GetObject; ListObjectsV2 and
# HeadBucket -> s3:ListBucket; SendMessageBatch -> sqs:SendMessage, DeleteMessageBatch ->
# sqs:DeleteMessage, ChangeMessageVisibilityBatch -> sqs:ChangeMessageVisibility; other SQS
# operations -> sqs:<same name>.
locals {
  store_prefix = trim(var.store_prefix, "/")
  key_prefix   = local.store_prefix == "" ? "" : "${local.store_prefix}/"
  store_url    = local.store_prefix == "" ? "s3://${var.bucket}" : "s3://${var.bucket}/${local.store_prefix}"

  bucket_arn  = "arn:${var.partition}:s3:::${var.bucket}"
  objects_arn = "${local.bucket_arn}/${local.key_prefix}"
  sqs_arn     = "arn:${var.partition}:sqs:${var.region}:${var.account_id}"

  endpoints = sort(distinct(var.endpoints))
  queues = {
    for e in local.endpoints : e => {
      name     = "faas-${e}"
      arn      = "${local.sqs_arn}:faas-${e}"
      dlq_name = "faas-${e}-dlq"
      dlq_arn  = "${local.sqs_arn}:faas-${e}-dlq"
    }
  }
  task_queue_arns = [for e in local.endpoints : local.queues[e].arn]
  # Every client's reply queue: the pattern clients may create/read/delete and the site may notify.
  reply_queues_arn = "${local.sqs_arn}:${var.reply_queue_prefix}*"

  # A task queue whose name matched the reply pattern would be a queue every client may
  # receive from and delete: refuse such names.
  overlaps = [
    for q in concat([for e in local.endpoints : local.queues[e].name], [for e in local.endpoints : local.queues[e].dlq_name]) :
    q if startswith(q, var.reply_queue_prefix)
  ]

  # Scientists, notebooks and CI jobs: store functions and arguments, send tasks, read results.
  client_statements = [
    {
      # register_function (functions/), arguments too large for a message (args/), cancel (cancels/),
      # task groups (groups/: one record per send round, so reload_tasks finds the tasks)
      Sid    = "PutTaskInputs"
      Effect = "Allow"
      Action = ["s3:PutObject"]
      Resource = [
        "${local.objects_arn}functions/*", "${local.objects_arn}args/*", "${local.objects_arn}cancels/*",
        "${local.objects_arn}groups/*",
      ]
    },
    {
      # HeadObject before storing a function; results; task state (running/, cancels/);
      # endpoint records (list_endpoints, describe_endpoint, finding an endpoint's queue);
      # task group records (reload_tasks, get_task of a task this process did not send)
      Sid    = "ReadTaskOutputs"
      Effect = "Allow"
      Action = ["s3:GetObject"]
      Resource = [
        "${local.objects_arn}functions/*", "${local.objects_arn}results/*", "${local.objects_arn}running/*",
        "${local.objects_arn}cancels/*", "${local.objects_arn}endpoints/*", "${local.objects_arn}groups/*",
      ]
    },
    {
      # ListObjectsV2 of endpoints/, HeadBucket after a 404; on AWS a HeadObject of a missing
      # key answers 404 (not 403) only with s3:ListBucket on the bucket, unconditioned
      Sid      = "ListStore"
      Effect   = "Allow"
      Action   = ["s3:ListBucket"]
      Resource = [local.bucket_arn]
    },
    {
      # find the endpoint's queue, send tasks, read its depth (describe_endpoint)
      Sid      = "SendTasks"
      Effect   = "Allow"
      Action   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
      Resource = local.task_queue_arns
    },
    {
      # each client makes its own reply queue, reads its notices, and deletes it on close.
      # Every client's: a reply queue's name is random (PREFIX + a uuid, made by the client), so
      # no resource pattern tells one client's from another's
      Sid      = "OwnReplyQueue"
      Effect   = "Allow"
      Action   = ["sqs:CreateQueue", "sqs:DeleteMessage", "sqs:DeleteQueue", "sqs:ReceiveMessage"]
      Resource = [local.reply_queues_arn]
    },
  ]

  # One policy per endpoint, for the endpoint daemon, its worker pools and their workers: task
  # messages carry their tasks' secrets (whoever reads one could forge that task's result), so
  # an endpoint's role reaches only its own queues, record and journal.
  site_statements = {
    for e in local.endpoints : e => [
      {
        # functions, spilled arguments, cancel markers; results/ (the daemon checks for a result
        # before failing a dead-lettered task). Not per endpoint: these keys name the client and
        # the task, never the endpoint (faas/messages.py), so an endpoint's role may also read
        # the functions and spilled arguments of tasks sent to the site's other endpoints.
        Sid      = "ReadTaskInputs"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${local.objects_arn}functions/*", "${local.objects_arn}args/*", "${local.objects_arn}cancels/*", "${local.objects_arn}results/*"]
      },
      {
        # results, running markers, dead letters: keys of the client and the task, not the
        # endpoint, so not narrower (another endpoint could overwrite them, never forge them:
        # results and failures are sealed with the task's secret, which only its own queue
        # carries); the task journal the console lists (one object per pool flush, under the
        # endpoint's own name)
        Sid      = "WriteTaskOutputs"
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = ["${local.objects_arn}results/*", "${local.objects_arn}running/*", "${local.objects_arn}dead-letters/*", "${local.objects_arn}journal/${e}/*"]
      },
      {
        # the endpoint's own record: published while it runs, removed by `faas endpoint delete`
        Sid      = "EndpointRecord"
        Effect   = "Allow"
        Action   = ["s3:DeleteObject", "s3:PutObject"]
        Resource = ["${local.objects_arn}endpoints/${e}.json"]
      },
      {
        # HeadBucket after a 404; on AWS a HeadObject of a missing key (no cancel marker) answers
        # 404, not 403, only with s3:ListBucket on the bucket with no condition (a HeadObject
        # carries no s3:prefix to match), so it cannot be narrowed to a prefix
        Sid      = "ListStore"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [local.bucket_arn]
      },
      {
        # the daemon's idempotent create (the queues exist: Terraform made them with the same
        # attributes, so it only returns their URLs), queue depth, the dead-letter queue's ARN;
        # pools receive, delete, hand tasks back (send) and dead-letter them; the daemon drains
        # the dead-letter queue. This endpoint's two queues only.
        Sid      = "TaskAndDeadLetterQueues"
        Effect   = "Allow"
        Action   = ["sqs:CreateQueue", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"]
        Resource = [local.queues[e].arn, local.queues[e].dlq_arn]
      },
      {
        # pools open the task queue by name and keep running tasks invisible (heartbeats, releases)
        Sid      = "TaskQueue"
        Effect   = "Allow"
        Action   = ["sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"]
        Resource = [local.queues[e].arn]
      },
      {
        # started/done notices to the client that sent the task. Every reply queue: clients
        # name theirs at random when they start, so no name (nor tag) tells whose tasks an
        # endpoint holds; notices are sealed with the task's secret, so another endpoint's
        # would be refused by the client.
        Sid      = "NotifyClients"
        Effect   = "Allow"
        Action   = ["sqs:GetQueueUrl", "sqs:SendMessage"]
        Resource = [local.reply_queues_arn]
      },
    ]
  }

  client_policy = { Version = "2012-10-17", Statement = local.client_statements }
  site_policies = { for e in local.endpoints : e => { Version = "2012-10-17", Statement = local.site_statements[e] } }
}
