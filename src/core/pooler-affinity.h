/* pooler-affinity.h: conversation continuity — which account a
 * conversation lives on.
 *
 * Keys are the SHA-256 of "pool id:kind:value", so the raw prompt cache
 * key, session id or response id is never kept. A "response" key (a
 * previous_response_id that this gateway saw being created) is a hard pin:
 * encrypted reasoning only verifies on the account that made it. The other
 * kinds are soft preferences.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define POOLER_AFFINITY_TTL_SECONDS (24 * 60 * 60)

#define POOLER_AFFINITY_PROMPT_CACHE "prompt_cache_key"
#define POOLER_AFFINITY_SESSION      "session"
#define POOLER_AFFINITY_RESPONSE     "response"

typedef struct
{
  char    *key_sha256;
  char    *kind;
  char    *account_id;
  gint64   pool_id;
  gint64   expires_at;
} PoolerAffinityEntry;

#define POOLER_TYPE_AFFINITY (pooler_affinity_get_type ())

G_DECLARE_FINAL_TYPE (PoolerAffinity, pooler_affinity, POOLER, AFFINITY, GObject)

PoolerAffinity *pooler_affinity_new          (void);
char           *pooler_affinity_hash         (gint64          pool_id,
                                              const char     *kind,
                                              const char     *value);
/* pooler_affinity_hash()'s key, remembered for the values seen lately
 * (each request of a conversation sends the same ones). */
char           *pooler_affinity_key          (PoolerAffinity *self,
                                              gint64          pool_id,
                                              const char     *kind,
                                              const char     *value);
/* The account @value (of @kind) lives on, or NULL; expired entries are
 * dropped on the way. */
const char     *pooler_affinity_lookup       (PoolerAffinity *self,
                                              gint64          pool_id,
                                              const char     *kind,
                                              const char     *value,
                                              gint64          now);
/* The same, for a key pooler_affinity_hash() made (NULL: none). A request
 * hashes its keys once and looks up and remembers by them. */
const char     *pooler_affinity_lookup_key   (PoolerAffinity *self,
                                              const char     *key,
                                              gint64          now);
/* Remembers (or moves) @value to @account_id until @now + TTL. Returns the
 * entry (owned by @self) when it changed enough to persist: new, moved, or
 * its expiry pushed out by an hour or more; NULL otherwise. */
const PoolerAffinityEntry *pooler_affinity_remember (PoolerAffinity *self,
                                              gint64          pool_id,
                                              const char     *kind,
                                              const char     *value,
                                              const char     *account_id,
                                              gint64          now);
/* The same, for a key pooler_affinity_hash() made (NULL: nothing). */
const PoolerAffinityEntry *pooler_affinity_remember_key (PoolerAffinity *self,
                                              const char     *key,
                                              gint64          pool_id,
                                              const char     *kind,
                                              const char     *account_id,
                                              gint64          now);
/* Loads a persisted entry (already hashed). */
void            pooler_affinity_load         (PoolerAffinity *self,
                                              const PoolerAffinityEntry *entry);
/* Forgets every entry of @account_id (removed accounts). */
void            pooler_affinity_forget_account (PoolerAffinity *self,
                                              const char     *account_id);
guint           pooler_affinity_get_size     (PoolerAffinity *self);

PoolerAffinityEntry *pooler_affinity_entry_copy (const PoolerAffinityEntry *entry);
void                 pooler_affinity_entry_free (PoolerAffinityEntry       *entry);

G_END_DECLS
