/* pooler-http-fields.h: the fields of one HTTP head, parsed once, in
 * their order, each name and value a string in the fields' own copy of
 * the head's bytes.
 *
 * The hot path reads an upstream answer's fields a few times (framing,
 * content type, quota evidence) and writes most of them on to the client
 * once. SoupMessageHeaders costs about 800 instructions a field to fill
 * (names interned under a global lock, values copied and checked again);
 * this costs a copy of the head and a pass over it. Anything that wants
 * SoupMessageHeaders still gets them: pooler_http_fields_to_soup().
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "pooler-http-head.h"

G_BEGIN_DECLS

typedef struct
{
  const char *name;    /* as the head spells it */
  const char *value;   /* without the spaces around it */
} PoolerHttpField;

typedef struct _PoolerHttpFields PoolerHttpFields;

/* The field lines from @p (after the start line) up to and including the
 * empty line, which must end before @end: NULL when a line is not plain
 * (pooler-http-head.h's rules, as pooler_http_parse_fields() has them) or
 * there are more than @max_fields. @p is not changed. */
PoolerHttpFields      *pooler_http_fields_parse     (const char            *p,
                                                     const char            *end,
                                                     guint                  max_fields,
                                                     PoolerHttpFieldsFlags  flags);
/* The same fields as @headers has (for answers libsoup parsed). */
PoolerHttpFields      *pooler_http_fields_new_from_soup (SoupMessageHeaders *headers);
void                   pooler_http_fields_free      (PoolerHttpFields      *self);

guint                  pooler_http_fields_get_n     (const PoolerHttpFields *self);
const PoolerHttpField *pooler_http_fields_get       (const PoolerHttpFields *self,
                                                     guint                   index);
/* The first field named @name, in any case; NULL when there is none. */
const char            *pooler_http_fields_find      (const PoolerHttpFields *self,
                                                     const char             *name);
/* Whether the Content-Type's media type (before any parameter) is
 * @media_type, in any case. */
gboolean               pooler_http_fields_media_type_is (const PoolerHttpFields *self,
                                                         const char             *media_type);
/* New SoupMessageHeaders of @type with every field, in order. */
SoupMessageHeaders    *pooler_http_fields_to_soup   (const PoolerHttpFields *self,
                                                     SoupMessageHeadersType  type);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PoolerHttpFields, pooler_http_fields_free)

G_END_DECLS
