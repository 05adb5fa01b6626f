/* pooler-account.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-account"

#include "config.h"

#include "pooler-account.h"

struct _PoolerAccount
{
  GObject              parent_instance;

  char                *id;
  char                *label;
  char                *email;
  char                *chatgpt_account_id;
  char                *chatgpt_user_id;
  char                *plan;
  char                *last_error;
  PoolerAccountStatus  status;
  int                  priority;
  gint64               cooldown_until;
  gint64               token_expires_at;
  gint64               last_used_at;
  gint64               created_at;
};

G_DEFINE_FINAL_TYPE (PoolerAccount, pooler_account, G_TYPE_OBJECT)

/* g_set_str() arrived in GLib 2.76; we pin 2.74. */
static gboolean
set_string (char       **field,
            const char  *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;

  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

enum {
  PROP_0,
  PROP_ID,
  PROP_LABEL,
  PROP_EMAIL,
  PROP_CHATGPT_ACCOUNT_ID,
  PROP_CHATGPT_USER_ID,
  PROP_PLAN,
  PROP_STATUS,
  PROP_COOLDOWN_UNTIL,
  PROP_TOKEN_EXPIRES_AT,
  PROP_LAST_USED_AT,
  PROP_LAST_ERROR,
  PROP_PRIORITY,
  PROP_CREATED_AT,
  N_PROPS
};

static GParamSpec *properties [N_PROPS];

static void
pooler_account_finalize (GObject *object)
{
  PoolerAccount *self = (PoolerAccount *)object;

  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->label, g_free);
  g_clear_pointer (&self->email, g_free);
  g_clear_pointer (&self->chatgpt_account_id, g_free);
  g_clear_pointer (&self->chatgpt_user_id, g_free);
  g_clear_pointer (&self->plan, g_free);
  g_clear_pointer (&self->last_error, g_free);

  G_OBJECT_CLASS (pooler_account_parent_class)->finalize (object);
}

static void
pooler_account_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  PoolerAccount *self = POOLER_ACCOUNT (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_LABEL:
      g_value_set_string (value, self->label);
      break;
    case PROP_EMAIL:
      g_value_set_string (value, self->email);
      break;
    case PROP_CHATGPT_ACCOUNT_ID:
      g_value_set_string (value, self->chatgpt_account_id);
      break;
    case PROP_CHATGPT_USER_ID:
      g_value_set_string (value, self->chatgpt_user_id);
      break;
    case PROP_PLAN:
      g_value_set_string (value, self->plan);
      break;
    case PROP_STATUS:
      g_value_set_int (value, (int) self->status);
      break;
    case PROP_COOLDOWN_UNTIL:
      g_value_set_int64 (value, self->cooldown_until);
      break;
    case PROP_TOKEN_EXPIRES_AT:
      g_value_set_int64 (value, self->token_expires_at);
      break;
    case PROP_LAST_USED_AT:
      g_value_set_int64 (value, self->last_used_at);
      break;
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    case PROP_PRIORITY:
      g_value_set_int (value, self->priority);
      break;
    case PROP_CREATED_AT:
      g_value_set_int64 (value, self->created_at);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pooler_account_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  PoolerAccount *self = POOLER_ACCOUNT (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_assert (self->id == NULL);
      self->id = g_value_dup_string (value);
      break;
    case PROP_LABEL:
      pooler_account_set_label (self, g_value_get_string (value));
      break;
    case PROP_EMAIL:
      pooler_account_set_email (self, g_value_get_string (value));
      break;
    case PROP_CHATGPT_ACCOUNT_ID:
      pooler_account_set_chatgpt_account_id (self, g_value_get_string (value));
      break;
    case PROP_CHATGPT_USER_ID:
      pooler_account_set_chatgpt_user_id (self, g_value_get_string (value));
      break;
    case PROP_PLAN:
      pooler_account_set_plan (self, g_value_get_string (value));
      break;
    case PROP_STATUS:
      pooler_account_set_status (self, (PoolerAccountStatus) g_value_get_int (value));
      break;
    case PROP_COOLDOWN_UNTIL:
      pooler_account_set_cooldown_until (self, g_value_get_int64 (value));
      break;
    case PROP_TOKEN_EXPIRES_AT:
      pooler_account_set_token_expires_at (self, g_value_get_int64 (value));
      break;
    case PROP_LAST_USED_AT:
      pooler_account_set_last_used_at (self, g_value_get_int64 (value));
      break;
    case PROP_LAST_ERROR:
      pooler_account_set_last_error (self, g_value_get_string (value));
      break;
    case PROP_PRIORITY:
      pooler_account_set_priority (self, g_value_get_int (value));
      break;
    case PROP_CREATED_AT:
      pooler_account_set_created_at (self, g_value_get_int64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pooler_account_class_init (PoolerAccountClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pooler_account_finalize;
  object_class->get_property = pooler_account_get_property;
  object_class->set_property = pooler_account_set_property;

  properties [PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  properties [PROP_LABEL] =
    g_param_spec_string ("label", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_EMAIL] =
    g_param_spec_string ("email", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_CHATGPT_ACCOUNT_ID] =
    g_param_spec_string ("chatgpt-account-id", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_CHATGPT_USER_ID] =
    g_param_spec_string ("chatgpt-user-id", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_PLAN] =
    g_param_spec_string ("plan", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_STATUS] =
    g_param_spec_int ("status", NULL, NULL,
                      POOLER_ACCOUNT_ACTIVE, POOLER_ACCOUNT_REAUTH_REQUIRED, POOLER_ACCOUNT_ACTIVE,
                      (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_COOLDOWN_UNTIL] =
    g_param_spec_int64 ("cooldown-until", NULL, NULL,
                        0, G_MAXINT64, 0,
                        (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_TOKEN_EXPIRES_AT] =
    g_param_spec_int64 ("token-expires-at", NULL, NULL,
                        0, G_MAXINT64, 0,
                        (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_LAST_USED_AT] =
    g_param_spec_int64 ("last-used-at", NULL, NULL,
                        0, G_MAXINT64, 0,
                        (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_LAST_ERROR] =
    g_param_spec_string ("last-error", NULL, NULL, NULL,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_PRIORITY] =
    g_param_spec_int ("priority", NULL, NULL,
                      G_MININT, G_MAXINT, 0,
                      (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  properties [PROP_CREATED_AT] =
    g_param_spec_int64 ("created-at", NULL, NULL,
                        0, G_MAXINT64, 0,
                        (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pooler_account_init (PoolerAccount *self)
{
  self->status = POOLER_ACCOUNT_ACTIVE;
}

PoolerAccount *
pooler_account_new (const char *id)
{
  g_return_val_if_fail (id != NULL && *id != '\0', NULL);

  return g_object_new (POOLER_TYPE_ACCOUNT, "id", id, NULL);
}

const char *
pooler_account_get_id (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->id;
}

const char *
pooler_account_get_label (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->label;
}

void
pooler_account_set_label (PoolerAccount *self,
                         const char *value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (set_string (&self->label, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_LABEL]);
}

const char *
pooler_account_get_email (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->email;
}

void
pooler_account_set_email (PoolerAccount *self,
                         const char *value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (set_string (&self->email, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_EMAIL]);
}

const char *
pooler_account_get_chatgpt_account_id (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->chatgpt_account_id;
}

void
pooler_account_set_chatgpt_account_id (PoolerAccount *self,
                                      const char *value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (set_string (&self->chatgpt_account_id, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CHATGPT_ACCOUNT_ID]);
}

const char *
pooler_account_get_chatgpt_user_id (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->chatgpt_user_id;
}

void
pooler_account_set_chatgpt_user_id (PoolerAccount *self,
                                   const char *value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (set_string (&self->chatgpt_user_id, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CHATGPT_USER_ID]);
}

const char *
pooler_account_get_plan (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->plan;
}

void
pooler_account_set_plan (PoolerAccount *self,
                        const char *value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (set_string (&self->plan, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_PLAN]);
}

PoolerAccountStatus 
pooler_account_get_status (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), 0);

  return self->status;
}

void
pooler_account_set_status (PoolerAccount *self,
                          PoolerAccountStatus value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (self->status != value)
    {
      self->status = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_STATUS]);
    }
}

gint64 
pooler_account_get_cooldown_until (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), 0);

  return self->cooldown_until;
}

void
pooler_account_set_cooldown_until (PoolerAccount *self,
                                  gint64 value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (self->cooldown_until != value)
    {
      self->cooldown_until = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_COOLDOWN_UNTIL]);
    }
}

gint64 
pooler_account_get_token_expires_at (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), 0);

  return self->token_expires_at;
}

void
pooler_account_set_token_expires_at (PoolerAccount *self,
                                    gint64 value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (self->token_expires_at != value)
    {
      self->token_expires_at = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_TOKEN_EXPIRES_AT]);
    }
}

gint64 
pooler_account_get_last_used_at (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), 0);

  return self->last_used_at;
}

void
pooler_account_set_last_used_at (PoolerAccount *self,
                                gint64 value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (self->last_used_at != value)
    {
      self->last_used_at = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_LAST_USED_AT]);
    }
}

const char *
pooler_account_get_last_error (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), NULL);

  return self->last_error;
}

void
pooler_account_set_last_error (PoolerAccount *self,
                              const char *value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (set_string (&self->last_error, value))
    g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_LAST_ERROR]);
}

int 
pooler_account_get_priority (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), 0);

  return self->priority;
}

void
pooler_account_set_priority (PoolerAccount *self,
                            int value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (self->priority != value)
    {
      self->priority = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_PRIORITY]);
    }
}

gint64 
pooler_account_get_created_at (PoolerAccount *self)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), 0);

  return self->created_at;
}

void
pooler_account_set_created_at (PoolerAccount *self,
                              gint64 value)
{
  g_return_if_fail (POOLER_IS_ACCOUNT (self));

  if (self->created_at != value)
    {
      self->created_at = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties [PROP_CREATED_AT]);
    }
}

gboolean
pooler_account_is_usable (PoolerAccount *self,
                          gint64         now)
{
  g_return_val_if_fail (POOLER_IS_ACCOUNT (self), FALSE);

  return self->status == POOLER_ACCOUNT_ACTIVE && self->cooldown_until <= now;
}

static const char * const status_names[] = {
  [POOLER_ACCOUNT_ACTIVE] = "active",
  [POOLER_ACCOUNT_PAUSED] = "paused",
  [POOLER_ACCOUNT_REAUTH_REQUIRED] = "reauth_required",
};

const char *
pooler_account_status_to_string (PoolerAccountStatus status)
{
  g_return_val_if_fail ((guint) status < G_N_ELEMENTS (status_names), "unknown");

  return status_names[status];
}

gboolean
pooler_account_status_from_string (const char          *str,
                                   PoolerAccountStatus *status)
{
  for (guint i = 0; i < G_N_ELEMENTS (status_names); i++)
    {
      if (g_strcmp0 (str, status_names[i]) == 0)
        {
          *status = (PoolerAccountStatus) i;
          return TRUE;
        }
    }

  return FALSE;
}
