/* pooler-account.h: one pooled ChatGPT/Codex account (metadata, never tokens).
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum
{
  POOLER_ACCOUNT_ACTIVE,
  POOLER_ACCOUNT_PAUSED,           /* the operator took it out of rotation */
  POOLER_ACCOUNT_REAUTH_REQUIRED,  /* its refresh token was refused for good */
} PoolerAccountStatus;

#define POOLER_TYPE_ACCOUNT (pooler_account_get_type ())

G_DECLARE_FINAL_TYPE (PoolerAccount, pooler_account, POOLER, ACCOUNT, GObject)

PoolerAccount       *pooler_account_new                    (const char          *id);
const char          *pooler_account_get_id                 (PoolerAccount       *self);
const char          *pooler_account_get_label              (PoolerAccount       *self);
void                 pooler_account_set_label              (PoolerAccount       *self,
                                                            const char          *label);
const char          *pooler_account_get_email              (PoolerAccount       *self);
void                 pooler_account_set_email              (PoolerAccount       *self,
                                                            const char          *email);
const char          *pooler_account_get_chatgpt_account_id (PoolerAccount       *self);
void                 pooler_account_set_chatgpt_account_id (PoolerAccount       *self,
                                                            const char          *chatgpt_account_id);
const char          *pooler_account_get_chatgpt_user_id    (PoolerAccount       *self);
void                 pooler_account_set_chatgpt_user_id    (PoolerAccount       *self,
                                                            const char          *chatgpt_user_id);
const char          *pooler_account_get_plan               (PoolerAccount       *self);
void                 pooler_account_set_plan               (PoolerAccount       *self,
                                                            const char          *plan);
PoolerAccountStatus  pooler_account_get_status             (PoolerAccount       *self);
void                 pooler_account_set_status             (PoolerAccount       *self,
                                                            PoolerAccountStatus  status);
gint64               pooler_account_get_cooldown_until     (PoolerAccount       *self);
void                 pooler_account_set_cooldown_until     (PoolerAccount       *self,
                                                            gint64               unix_seconds);
gint64               pooler_account_get_token_expires_at   (PoolerAccount       *self);
void                 pooler_account_set_token_expires_at   (PoolerAccount       *self,
                                                            gint64               unix_seconds);
gint64               pooler_account_get_last_used_at       (PoolerAccount       *self);
void                 pooler_account_set_last_used_at       (PoolerAccount       *self,
                                                            gint64               unix_seconds);
const char          *pooler_account_get_last_error         (PoolerAccount       *self);
void                 pooler_account_set_last_error         (PoolerAccount       *self,
                                                            const char          *error_code);
int                  pooler_account_get_priority           (PoolerAccount       *self);
void                 pooler_account_set_priority           (PoolerAccount       *self,
                                                            int                  priority);
gint64               pooler_account_get_created_at         (PoolerAccount       *self);
void                 pooler_account_set_created_at         (PoolerAccount       *self,
                                                            gint64               unix_seconds);

/* Whether the router may send traffic to it at @now (unix seconds). */
gboolean             pooler_account_is_usable              (PoolerAccount       *self,
                                                            gint64               now);

const char          *pooler_account_status_to_string       (PoolerAccountStatus  status);
gboolean             pooler_account_status_from_string     (const char          *str,
                                                            PoolerAccountStatus *status);

G_END_DECLS
