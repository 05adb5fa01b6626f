/* pooler-affinity.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-affinity"

#include "config.h"

#include <string.h>

#include "pooler-affinity.h"

/* Above this many entries, expired ones are swept on insert. */
#define SWEEP_THRESHOLD 4096

/* Keys made lately, by their values: a conversation sends the same
 * session and prompt cache key with every request, and a SHA-256 costs
 * more than the rest of its lookups. Direct-mapped; values longer than
 * MEMO_MAX_VALUE are hashed every time. In memory only, like the
 * request that carried them. */
#define MEMO_SLOTS     64
#define MEMO_MAX_VALUE 256

typedef struct
{
  gint64  pool_id;
  char   *kind;
  char   *value;      /* NULL: an empty slot */
  char   *key;
} MemoSlot;

struct _PoolerAffinity
{
  GObject     parent_instance;

  GHashTable *entries;   /* key_sha256 -> PoolerAffinityEntry */
  guint       inserts_since_sweep;
  MemoSlot    memo[MEMO_SLOTS];
};

G_DEFINE_FINAL_TYPE (PoolerAffinity, pooler_affinity, G_TYPE_OBJECT)

PoolerAffinityEntry *
pooler_affinity_entry_copy (const PoolerAffinityEntry *entry)
{
  PoolerAffinityEntry *copy = g_memdup2 (entry, sizeof *entry);

  copy->key_sha256 = g_strdup (entry->key_sha256);
  copy->kind = g_strdup (entry->kind);
  copy->account_id = g_strdup (entry->account_id);

  return copy;
}

void
pooler_affinity_entry_free (PoolerAffinityEntry *entry)
{
  if (entry == NULL)
    return;

  g_free (entry->key_sha256);
  g_free (entry->kind);
  g_free (entry->account_id);
  g_free (entry);
}

static void
memo_slot_clear (MemoSlot *slot)
{
  g_clear_pointer (&slot->kind, g_free);
  g_clear_pointer (&slot->value, g_free);
  g_clear_pointer (&slot->key, g_free);
}

static void
pooler_affinity_finalize (GObject *object)
{
  PoolerAffinity *self = (PoolerAffinity *)object;

  g_clear_pointer (&self->entries, g_hash_table_unref);
  for (guint i = 0; i < MEMO_SLOTS; i++)
    memo_slot_clear (&self->memo[i]);

  G_OBJECT_CLASS (pooler_affinity_parent_class)->finalize (object);
}

static void
pooler_affinity_class_init (PoolerAffinityClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_affinity_finalize;
}

static void
pooler_affinity_init (PoolerAffinity *self)
{
  self->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) pooler_affinity_entry_free);
}

PoolerAffinity *
pooler_affinity_new (void)
{
  return g_object_new (POOLER_TYPE_AFFINITY, NULL);
}

char *
pooler_affinity_hash (gint64      pool_id,
                      const char *kind,
                      const char *value)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  char pool[24];
  int length;

  /* SHA-256 of "<pool>:<kind>:<value>", fed in pieces: no copy of the value. */
  length = g_snprintf (pool, sizeof pool, "%" G_GINT64_FORMAT ":", pool_id);
  g_checksum_update (checksum, (const guchar *) pool, length);
  g_checksum_update (checksum, (const guchar *) kind, -1);
  g_checksum_update (checksum, (const guchar *) ":", 1);
  g_checksum_update (checksum, (const guchar *) value, -1);

  return g_strdup (g_checksum_get_string (checksum));
}

char *
pooler_affinity_key (PoolerAffinity *self,
                     gint64          pool_id,
                     const char     *kind,
                     const char     *value)
{
  MemoSlot *slot;
  gsize length;

  g_return_val_if_fail (POOLER_IS_AFFINITY (self), NULL);
  g_return_val_if_fail (kind != NULL, NULL);
  g_return_val_if_fail (value != NULL, NULL);

  length = strlen (value);
  if (length > MEMO_MAX_VALUE)
    return pooler_affinity_hash (pool_id, kind, value);

  slot = &self->memo[(g_str_hash (value) ^ (guint) pool_id ^ (guint) g_str_hash (kind)) % MEMO_SLOTS];
  if (slot->value == NULL || slot->pool_id != pool_id ||
      strcmp (slot->kind, kind) != 0 || strcmp (slot->value, value) != 0)
    {
      memo_slot_clear (slot);
      slot->pool_id = pool_id;
      slot->kind = g_strdup (kind);
      slot->value = g_memdup2 (value, length + 1);
      slot->key = pooler_affinity_hash (pool_id, kind, value);
    }

  return g_strdup (slot->key);
}

const char *
pooler_affinity_lookup (PoolerAffinity *self,
                        gint64          pool_id,
                        const char     *kind,
                        const char     *value,
                        gint64          now)
{
  g_autofree char *key = NULL;

  g_return_val_if_fail (POOLER_IS_AFFINITY (self), NULL);

  if (value == NULL || *value == '\0')
    return NULL;

  key = pooler_affinity_key (self, pool_id, kind, value);
  return pooler_affinity_lookup_key (self, key, now);
}

const char *
pooler_affinity_lookup_key (PoolerAffinity *self,
                            const char     *key,
                            gint64          now)
{
  PoolerAffinityEntry *entry;

  g_return_val_if_fail (POOLER_IS_AFFINITY (self), NULL);

  if (key == NULL)
    return NULL;

  entry = g_hash_table_lookup (self->entries, key);
  if (entry == NULL)
    return NULL;

  if (entry->expires_at <= now)
    {
      g_hash_table_remove (self->entries, key);
      return NULL;
    }

  return entry->account_id;
}

static void
sweep (PoolerAffinity *self,
       gint64          now)
{
  GHashTableIter iter;
  PoolerAffinityEntry *entry;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    if (entry->expires_at <= now)
      g_hash_table_iter_remove (&iter);

  self->inserts_since_sweep = 0;
}

static const PoolerAffinityEntry *
insert (PoolerAffinity            *self,
        const PoolerAffinityEntry *entry)
{
  PoolerAffinityEntry *copy = pooler_affinity_entry_copy (entry);

  g_hash_table_replace (self->entries, copy->key_sha256, copy);
  return copy;
}

const PoolerAffinityEntry *
pooler_affinity_remember (PoolerAffinity *self,
                          gint64          pool_id,
                          const char     *kind,
                          const char     *value,
                          const char     *account_id,
                          gint64          now)
{
  g_autofree char *key = NULL;

  g_return_val_if_fail (POOLER_IS_AFFINITY (self), NULL);
  g_return_val_if_fail (account_id != NULL, NULL);

  if (value == NULL || *value == '\0')
    return NULL;

  key = pooler_affinity_key (self, pool_id, kind, value);
  return pooler_affinity_remember_key (self, key, pool_id, kind, account_id, now);
}

const PoolerAffinityEntry *
pooler_affinity_remember_key (PoolerAffinity *self,
                              const char     *key,
                              gint64          pool_id,
                              const char     *kind,
                              const char     *account_id,
                              gint64          now)
{
  PoolerAffinityEntry entry;
  PoolerAffinityEntry *known;

  g_return_val_if_fail (POOLER_IS_AFFINITY (self), NULL);
  g_return_val_if_fail (account_id != NULL, NULL);

  if (key == NULL)
    return NULL;

  if (++self->inserts_since_sweep > SWEEP_THRESHOLD)
    sweep (self, now);

  /* Same account and an expiry extended by less than an hour: nothing
   * worth writing down. */
  known = g_hash_table_lookup (self->entries, key);
  if (known != NULL && g_strcmp0 (known->account_id, account_id) == 0 &&
      now + POOLER_AFFINITY_TTL_SECONDS - known->expires_at < 3600)
    return NULL;

  entry.key_sha256 = (char *) key;
  entry.kind = (char *) kind;
  entry.account_id = (char *) account_id;
  entry.pool_id = pool_id;
  entry.expires_at = now + POOLER_AFFINITY_TTL_SECONDS;

  return insert (self, &entry);
}

void
pooler_affinity_load (PoolerAffinity            *self,
                      const PoolerAffinityEntry *entry)
{
  g_return_if_fail (POOLER_IS_AFFINITY (self));
  g_return_if_fail (entry != NULL && entry->key_sha256 != NULL);

  insert (self, entry);
}

void
pooler_affinity_forget_account (PoolerAffinity *self,
                                const char     *account_id)
{
  GHashTableIter iter;
  PoolerAffinityEntry *entry;

  g_return_if_fail (POOLER_IS_AFFINITY (self));

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    if (g_strcmp0 (entry->account_id, account_id) == 0)
      g_hash_table_iter_remove (&iter);
}

guint
pooler_affinity_get_size (PoolerAffinity *self)
{
  g_return_val_if_fail (POOLER_IS_AFFINITY (self), 0);

  return g_hash_table_size (self->entries);
}
