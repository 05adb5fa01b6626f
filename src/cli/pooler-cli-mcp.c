/* placeholder until the MCP tokens land */
#include "config.h"

#include <glib.h>

#include "pooler-cli.h"
#include "pooler-cli-mcp.h"

int
pooler_cli_run_mcp_token (int    argc,
                          char **argv)
{
  g_printerr ("codex-pooler: mcp-token is not available yet\n");
  return POOLER_EXIT_ERROR;
}
