/* placeholder until /mcp lands */
#include "config.h"

#include "pooler-api-error.h"
#include "pooler-mcp.h"

struct _PoolerMcp
{
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (PoolerMcp, pooler_mcp, G_TYPE_OBJECT)

static void
pooler_mcp_class_init (PoolerMcpClass *klass)
{
}

static void
pooler_mcp_init (PoolerMcp *self)
{
}

PoolerMcp *
pooler_mcp_new (PoolerService *service)
{
  return g_object_new (POOLER_TYPE_MCP, NULL);
}

void
pooler_mcp_handle (PoolerMcp         *self,
                   SoupServerMessage *msg)
{
  pooler_api_error_respond (msg, SOUP_STATUS_NOT_FOUND, "invalid_request_error",
                            "unknown_route", NULL, "This gateway does not serve that path.");
}
