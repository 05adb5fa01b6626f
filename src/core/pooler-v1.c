/* placeholder until the /v1 surface lands: every path is unsupported */
#include "config.h"

#include "pooler-api-error.h"
#include "pooler-v1.h"

void
pooler_v1_handle (PoolerProxy           *proxy,
                  PoolerService         *service,
                  SoupServerMessage     *msg,
                  const char            *path,
                  const PoolerKeyRecord *key)
{
  pooler_api_error_respond (msg, SOUP_STATUS_NOT_FOUND, "invalid_request_error",
                            "unsupported_endpoint", NULL, "Unsupported OpenAI /v1 endpoint");
}
