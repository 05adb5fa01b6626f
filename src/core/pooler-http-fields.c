/* pooler-http-fields.c
 *
 * One allocation: the struct, the fields, then their names and values,
 * each ended by a NUL.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-http-fields"

#include "config.h"

#include <string.h>

#include "pooler-http-fields.h"

/* An answer with more fields than this goes to libsoup's parser. */
#define MAX_SPANS 128

struct _PoolerHttpFields
{
  guint           n_fields;
  PoolerHttpField fields[];   /* then the text */
};

/* @n fields whose names and values take @text_size bytes with their NULs. */
static PoolerHttpFields *
fields_alloc (guint   n,
              gsize   text_size,
              char  **text)
{
  gsize head_size = sizeof (PoolerHttpFields) + n * sizeof (PoolerHttpField);
  PoolerHttpFields *self = g_malloc (head_size + text_size);

  self->n_fields = n;
  *text = (char *) self + head_size;
  return self;
}

/* Copies @length bytes of @from to *@text, ends them, and moves on. */
static const char *
put (char       **text,
     const char  *from,
     gsize        length)
{
  char *at = *text;

  memcpy (at, from, length);
  at[length] = '\0';
  *text = at + length + 1;
  return at;
}

PoolerHttpFields *
pooler_http_fields_parse (const char            *p,
                          const char            *end,
                          guint                  max_fields,
                          PoolerHttpFieldsFlags  flags)
{
  PoolerHttpFieldSpan spans[MAX_SPANS];
  PoolerHttpFields *self;
  guint n = 0;
  gsize text_size = 0;
  char *text;

  g_return_val_if_fail (p != NULL && end != NULL && p <= end, NULL);

  max_fields = MIN (max_fields, MAX_SPANS);
  for (;;)
    {
      PoolerHttpFieldStep step;

      if (n == max_fields)
        {
          /* Only the empty line may come now. */
          PoolerHttpFieldSpan extra;

          if (pooler_http_next_field (&p, end, flags, &extra) != POOLER_HTTP_FIELD_END)
            return NULL;
          break;
        }
      step = pooler_http_next_field (&p, end, flags, &spans[n]);
      if (step == POOLER_HTTP_FIELD_BAD)
        return NULL;
      if (step == POOLER_HTTP_FIELD_END)
        break;
      text_size += spans[n].name_length + 1 + spans[n].value_length + 1;
      n++;
    }

  self = fields_alloc (n, text_size, &text);
  for (guint i = 0; i < n; i++)
    {
      self->fields[i].name = put (&text, spans[i].name, spans[i].name_length);
      self->fields[i].value = put (&text, spans[i].value, spans[i].value_length);
    }

  return self;
}

PoolerHttpFields *
pooler_http_fields_new_from_soup (SoupMessageHeaders *headers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;
  PoolerHttpFields *self;
  guint n = 0;
  gsize text_size = 0;
  char *text;

  g_return_val_if_fail (headers != NULL, NULL);

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      text_size += strlen (name) + 1 + strlen (value) + 1;
      n++;
    }

  self = fields_alloc (n, text_size, &text);
  n = 0;
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      self->fields[n].name = put (&text, name, strlen (name));
      self->fields[n].value = put (&text, value, strlen (value));
      n++;
    }

  return self;
}

void
pooler_http_fields_free (PoolerHttpFields *self)
{
  g_free (self);
}

guint
pooler_http_fields_get_n (const PoolerHttpFields *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->n_fields;
}

const PoolerHttpField *
pooler_http_fields_get (const PoolerHttpFields *self,
                        guint                   index)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (index < self->n_fields, NULL);

  return &self->fields[index];
}

const char *
pooler_http_fields_find (const PoolerHttpFields *self,
                         const char             *name)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  for (guint i = 0; i < self->n_fields; i++)
    if (g_ascii_strcasecmp (self->fields[i].name, name) == 0)
      return self->fields[i].value;

  return NULL;
}

gboolean
pooler_http_fields_media_type_is (const PoolerHttpFields *self,
                                  const char             *media_type)
{
  const char *value = pooler_http_fields_find (self, "Content-Type");
  gsize length = strlen (media_type);

  if (value == NULL || g_ascii_strncasecmp (value, media_type, length) != 0)
    return FALSE;
  value += length;
  while (*value == ' ' || *value == '\t')
    value++;

  return *value == '\0' || *value == ';';
}

SoupMessageHeaders *
pooler_http_fields_to_soup (const PoolerHttpFields *self,
                            SoupMessageHeadersType  type)
{
  SoupMessageHeaders *headers;

  g_return_val_if_fail (self != NULL, NULL);

  headers = soup_message_headers_new (type);
  for (guint i = 0; i < self->n_fields; i++)
    soup_message_headers_append (headers, self->fields[i].name, self->fields[i].value);

  return headers;
}
