/* pooler-pool.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-pool"

#include "config.h"

#include <string.h>

#include "pooler-pool.h"

struct _PoolerPool
{
  GObject  parent_instance;

  gint64   id;
  char    *slug;
  char    *name;
  char    *strategy;
  guint    ring_size;
  gint64   created_at;
};

G_DEFINE_FINAL_TYPE (PoolerPool, pooler_pool, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_SLUG,
  PROP_NAME,
  PROP_STRATEGY,
  PROP_RING_SIZE,
  N_PROPS
};

static GParamSpec *properties [N_PROPS];

static void
pooler_pool_finalize (GObject *object)
{
  PoolerPool *self = (PoolerPool *)object;

  g_clear_pointer (&self->slug, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->strategy, g_free);

  G_OBJECT_CLASS (pooler_pool_parent_class)->finalize (object);
}

static void
pooler_pool_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  PoolerPool *self = POOLER_POOL (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_int64 (value, self->id);
      break;
    case PROP_SLUG:
      g_value_set_string (value, self->slug);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_STRATEGY:
      g_value_set_string (value, self->strategy);
      break;
    case PROP_RING_SIZE:
      g_value_set_uint (value, self->ring_size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pooler_pool_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  PoolerPool *self = POOLER_POOL (object);

  switch (prop_id)
    {
    case PROP_ID:
      self->id = g_value_get_int64 (value);
      break;
    case PROP_SLUG:
      self->slug = g_value_dup_string (value);
      break;
    case PROP_NAME:
      pooler_pool_set_name (self, g_value_get_string (value));
      break;
    case PROP_STRATEGY:
      pooler_pool_set_strategy (self, g_value_get_string (value));
      break;
    case PROP_RING_SIZE:
      pooler_pool_set_ring_size (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pooler_pool_class_init (PoolerPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_pool_finalize;
  object_class->get_property = pooler_pool_get_property;
  object_class->set_property = pooler_pool_set_property;

  properties [PROP_ID] =
    g_param_spec_int64 ("id", NULL, NULL, 0, G_MAXINT64, 0,
                        (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
  properties [PROP_SLUG] =
    g_param_spec_string ("slug", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
  properties [PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));
  properties [PROP_STRATEGY] =
    g_param_spec_string ("strategy", NULL, NULL, POOLER_STRATEGY_DEFAULT,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_RING_SIZE] =
    g_param_spec_uint ("ring-size", NULL, NULL, 1, POOLER_POOL_RING_SIZE_MAX,
                       POOLER_POOL_RING_SIZE_DEFAULT,
                       (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pooler_pool_init (PoolerPool *self)
{
  self->strategy = g_strdup (POOLER_STRATEGY_DEFAULT);
  self->ring_size = POOLER_POOL_RING_SIZE_DEFAULT;
}

PoolerPool *
pooler_pool_new (gint64      id,
                 const char *slug)
{
  g_return_val_if_fail (slug != NULL, NULL);

  return g_object_new (POOLER_TYPE_POOL, "id", id, "slug", slug, "name", slug, NULL);
}

gint64
pooler_pool_get_id (PoolerPool *self)
{
  g_return_val_if_fail (POOLER_IS_POOL (self), 0);

  return self->id;
}

const char *
pooler_pool_get_slug (PoolerPool *self)
{
  g_return_val_if_fail (POOLER_IS_POOL (self), NULL);

  return self->slug;
}

const char *
pooler_pool_get_name (PoolerPool *self)
{
  g_return_val_if_fail (POOLER_IS_POOL (self), NULL);

  return self->name;
}

void
pooler_pool_set_name (PoolerPool *self,
                      const char *name)
{
  g_return_if_fail (POOLER_IS_POOL (self));

  if (g_strcmp0 (self->name, name) != 0)
    {
      g_free (self->name);
      self->name = g_strdup (name);
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_NAME]);
    }
}

const char *
pooler_pool_get_strategy (PoolerPool *self)
{
  g_return_val_if_fail (POOLER_IS_POOL (self), NULL);

  return self->strategy;
}

void
pooler_pool_set_strategy (PoolerPool *self,
                          const char *strategy)
{
  g_return_if_fail (POOLER_IS_POOL (self));
  g_return_if_fail (strategy == NULL || pooler_strategy_is_valid (strategy));

  if (strategy == NULL)
    strategy = POOLER_STRATEGY_DEFAULT;

  if (g_strcmp0 (self->strategy, strategy) != 0)
    {
      g_free (self->strategy);
      self->strategy = g_strdup (strategy);
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_STRATEGY]);
    }
}

guint
pooler_pool_get_ring_size (PoolerPool *self)
{
  g_return_val_if_fail (POOLER_IS_POOL (self), POOLER_POOL_RING_SIZE_DEFAULT);

  return self->ring_size;
}

void
pooler_pool_set_ring_size (PoolerPool *self,
                           guint       ring_size)
{
  g_return_if_fail (POOLER_IS_POOL (self));
  g_return_if_fail (ring_size >= 1 && ring_size <= POOLER_POOL_RING_SIZE_MAX);

  if (self->ring_size != ring_size)
    {
      self->ring_size = ring_size;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_RING_SIZE]);
    }
}

gint64
pooler_pool_get_created_at (PoolerPool *self)
{
  g_return_val_if_fail (POOLER_IS_POOL (self), 0);

  return self->created_at;
}

void
pooler_pool_set_created_at (PoolerPool *self,
                            gint64      unix_seconds)
{
  g_return_if_fail (POOLER_IS_POOL (self));

  self->created_at = unix_seconds;
}

gboolean
pooler_strategy_is_valid (const char *strategy)
{
  return g_strcmp0 (strategy, POOLER_STRATEGY_ROUND_ROBIN) == 0 ||
         g_strcmp0 (strategy, POOLER_STRATEGY_QUOTA_FIRST) == 0 ||
         g_strcmp0 (strategy, POOLER_STRATEGY_LEAST_RECENT) == 0 ||
         g_strcmp0 (strategy, POOLER_STRATEGY_FILL_FIRST) == 0;
}

/* Slugs appear in URLs, logs and command lines: keep them plain. */
gboolean
pooler_pool_slug_is_valid (const char *slug)
{
  gsize len;

  if (slug == NULL)
    return FALSE;

  len = strlen (slug);
  if (len == 0 || len > 64 || !g_ascii_isalnum (slug[0]))
    return FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = slug[i];
      if (!g_ascii_isalnum (c) && c != '-' && c != '_' && c != '.')
        return FALSE;
    }

  return TRUE;
}
