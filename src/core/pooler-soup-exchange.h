/* pooler-soup-exchange.h: a PoolerExchange on a libsoup server message.
 *
 * Creating one pauses the message; the answer unpauses it. Streamed
 * chunks go straight to the client's socket (pooler-chunk-writer) where
 * the message allows it, through libsoup's body otherwise.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "pooler-exchange.h"

G_BEGIN_DECLS

#define POOLER_TYPE_SOUP_EXCHANGE (pooler_soup_exchange_get_type ())

G_DECLARE_FINAL_TYPE (PoolerSoupExchange, pooler_soup_exchange, POOLER, SOUP_EXCHANGE, PoolerExchange)

PoolerExchange    *pooler_soup_exchange_new         (SoupServerMessage  *msg);
SoupServerMessage *pooler_soup_exchange_get_message (PoolerSoupExchange *self);
/* The client of @socket is gone (the gateway's sweep found it closed):
 * the exchange on it, if any, finishes as gone (the upstream request is
 * cancelled, the log row says 499). */
void               pooler_soup_exchange_notice_gone (GSocket            *socket);

G_END_DECLS
