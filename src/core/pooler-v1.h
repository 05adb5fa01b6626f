/* pooler-v1.h: the narrow OpenAI-compatible surface (/v1) for SDK clients.
 *
 * GET /v1/models, POST /v1/responses and POST /v1/chat/completions are
 * translated to the Codex backend's /codex/responses (streaming, store
 * false) and routed like native traffic; their answers are translated back
 * (PoolerTranslator). Every other /v1 path answers 404
 * unsupported_endpoint. Errors are OpenAI-shape JSON naming the param.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-key-record.h"
#include "pooler-proxy.h"
#include "pooler-service.h"

G_BEGIN_DECLS

/* An authenticated /v1 request (the gateway checked the Pool key and the
 * body size). Answers it, or hands it to @proxy translated. */
void pooler_v1_handle (PoolerProxy           *proxy,
                       PoolerService         *service,
                       SoupServerMessage     *msg,
                       const char            *path,
                       const PoolerKeyRecord *key);

G_END_DECLS
