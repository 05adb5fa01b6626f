/* pooler-request-body.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-request-body"

#include "config.h"

#include <string.h>
#include <zstd.h>

#include "pooler-error.h"
#include "pooler-json.h"
#include "pooler-json-scan.h"
#include "pooler-request-body.h"

gboolean
pooler_model_name_ok (const char *model)
{
  gsize i;

  if (model == NULL)
    return FALSE;
  for (i = 0; model[i] != '\0'; i++)
    if (i >= POOLER_MODEL_MAX_LENGTH || (guchar) model[i] <= 0x20 || (guchar) model[i] >= 0x7f)
      return FALSE;

  return i > 0;
}

static gboolean
read_string_member (PoolerJsonScanner *s,
                    char    **out)
{
  g_autoptr(GString) value = NULL;

  pooler_json_scan_skip_ws (s);
  if (s->p < s->end && *s->p == '"')
    {
      value = g_string_sized_new (POOLER_JSON_KEY_SIZE);
      if (!pooler_json_scan_string (s, value))
        return FALSE;
      g_free (*out);
      *out = g_string_free (g_steal_pointer (&value), FALSE);
      return TRUE;
    }

  /* null or another type: not a usable string, but still a valid body */
  return pooler_json_scan_skip_value (s, 1);
}

PoolerRequestBody *
pooler_request_body_scan (const char  *data,
                          gsize        length,
                          GError     **error)
{
  g_autoptr(PoolerRequestBody) body = g_new0 (PoolerRequestBody, 1);
  g_autoptr(GString) key = g_string_sized_new (POOLER_JSON_KEY_SIZE);
  PoolerJsonScanner s = { data, data + length, "request body", error };

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  pooler_json_scan_skip_ws (&s);
  if (s.p >= s.end || *s.p != '{')
    {
      pooler_json_scan_fail (&s, "must be a JSON object");
      return NULL;
    }
  s.p++;
  pooler_json_scan_skip_ws (&s);

  if (s.p < s.end && *s.p == '}')
    s.p++;
  else
    {
      for (;;)
        {
          pooler_json_scan_skip_ws (&s);
          if (s.p >= s.end || *s.p != '"')
            {
              pooler_json_scan_fail (&s, "has a malformed object key");
              return NULL;
            }
          g_string_truncate (key, 0);
          if (!pooler_json_scan_string (&s, key))
            return NULL;
          pooler_json_scan_skip_ws (&s);
          if (s.p >= s.end || *s.p != ':')
            {
              pooler_json_scan_fail (&s, "is missing a ':' after a key");
              return NULL;
            }
          s.p++;
          pooler_json_scan_skip_ws (&s);

          if (strcmp (key->str, "model") == 0)
            {
              if (!read_string_member (&s, &body->model))
                return NULL;
            }
          else if (strcmp (key->str, "prompt_cache_key") == 0)
            {
              if (!read_string_member (&s, &body->prompt_cache_key))
                return NULL;
            }
          else if (strcmp (key->str, "previous_response_id") == 0)
            {
              if (!read_string_member (&s, &body->previous_response_id))
                return NULL;
            }
          else if (strcmp (key->str, "stream") == 0 && pooler_json_scan_literal (&s, "true"))
            body->has_stream = body->stream = TRUE;
          else if (strcmp (key->str, "stream") == 0 && pooler_json_scan_literal (&s, "false"))
            {
              body->has_stream = TRUE;
              body->stream = FALSE;
            }
          else
            {
              if (strcmp (key->str, "input") == 0)
                body->has_input = TRUE;
              if (!pooler_json_scan_skip_value (&s, 1))
                return NULL;
            }

          pooler_json_scan_skip_ws (&s);
          if (s.p < s.end && *s.p == ',')
            {
              s.p++;
              continue;
            }
          if (s.p < s.end && *s.p == '}')
            {
              s.p++;
              break;
            }
          pooler_json_scan_fail (&s, s.p >= s.end ? "is cut short" : "is missing a ',' between members");
          return NULL;
        }
    }

  pooler_json_scan_skip_ws (&s);
  if (s.p != s.end)
    {
      pooler_json_scan_fail (&s, "has data after the JSON object");
      return NULL;
    }

  return g_steal_pointer (&body);
}

void
pooler_request_body_free (PoolerRequestBody *body)
{
  if (body == NULL)
    return;

  g_free (body->model);
  g_free (body->prompt_cache_key);
  g_free (body->previous_response_id);
  g_free (body);
}

static GBytes *
decode_zstd (GBytes  *body,
             gsize    max_size,
             GError **error)
{
  ZSTD_DStream *stream = ZSTD_createDStream ();
  g_autoptr(GByteArray) out = g_byte_array_new ();
  ZSTD_inBuffer in = { g_bytes_get_data (body, NULL), g_bytes_get_size (body), 0 };
  gsize last = 1;

  ZSTD_initDStream (stream);

  while (in.pos < in.size || last != 0)
    {
      guint8 buffer[16384];
      ZSTD_outBuffer o = { buffer, sizeof buffer, 0 };
      gsize progress_in = in.pos;

      last = ZSTD_decompressStream (stream, &o, &in);
      if (ZSTD_isError (last))
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                       "request body is not valid zstd: %s", ZSTD_getErrorName (last));
          ZSTD_freeDStream (stream);
          return NULL;
        }
      if (out->len + o.pos > max_size)
        {
          g_set_error (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                       "request body is larger than %" G_GSIZE_FORMAT " bytes once decompressed",
                       max_size);
          ZSTD_freeDStream (stream);
          return NULL;
        }
      g_byte_array_append (out, buffer, o.pos);

      /* Input used up and no output produced: the frame is cut short. */
      if (in.pos == in.size && o.pos == 0 && progress_in == in.pos && last != 0)
        {
          g_set_error_literal (error, POOLER_ERROR, POOLER_ERROR_INVALID,
                               "request body's zstd frame is cut short");
          ZSTD_freeDStream (stream);
          return NULL;
        }
    }

  ZSTD_freeDStream (stream);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

GBytes *
pooler_request_body_decode (const char  *content_encoding,
                            GBytes      *body,
                            gsize        max_size,
                            GError     **error)
{
  g_return_val_if_fail (body != NULL, NULL);

  if (content_encoding == NULL || *content_encoding == '\0' ||
      g_ascii_strcasecmp (content_encoding, "identity") == 0)
    return g_bytes_ref (body);

  if (g_ascii_strcasecmp (content_encoding, "zstd") == 0)
    return decode_zstd (body, max_size, error);

  g_set_error (error, POOLER_ERROR, POOLER_ERROR_UNSUPPORTED,
               "unsupported Content-Encoding \"%s\"", content_encoding);
  return NULL;
}
