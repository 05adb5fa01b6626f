/* pooler-v1-models.c: GET /v1/models.
 *
 * There is no per-Pool model catalog yet (the upstream's /codex/models
 * answer is only cached for the Codex CLI), so this is a fixed list: the
 * models the Codex CLI was seen asking the ChatGPT backend for in the
 * captures this project is built from. A key's allowed_models narrows it
 * (and the models a key names beyond the list are listed too: its owner
 * chose them).
 * "created" is 0 because no first-seen time is known.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-v1"

#include "config.h"

#include "pooler-v1-private.h"

static void
add_model (JsonBuilder *builder,
           const char  *id)
{
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "model");
  json_builder_set_member_name (builder, "created");
  json_builder_add_int_value (builder, 0);
  json_builder_set_member_name (builder, "owned_by");
  json_builder_add_string_value (builder, "codex-pooler");
  json_builder_end_object (builder);
}

static const char * const known_models[] = {
  "gpt-5.5",
  "gpt-6-sol",
  NULL,
};

const char * const *
pooler_v1_models_known (void)
{
  return known_models;
}

GBytes *
pooler_v1_models_list_body (const PoolerKeyRecord *key)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  g_return_val_if_fail (key != NULL, NULL);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "list");
  json_builder_set_member_name (builder, "data");
  json_builder_begin_array (builder);
  for (guint i = 0; known_models[i] != NULL; i++)
    if (pooler_key_record_allows_model (key, known_models[i]))
      add_model (builder, known_models[i]);
  for (guint i = 0; key->allowed_models != NULL && key->allowed_models[i] != NULL; i++)
    if (!g_strv_contains (known_models, key->allowed_models[i]))
      add_model (builder, key->allowed_models[i]);
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  return pooler_v1_json_to_bytes (root);
}
