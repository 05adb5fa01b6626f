/* pooler-notifier.c
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define G_LOG_DOMAIN "pooler-notifier"

#include "config.h"

#include <libnotify/notify.h>

#include "pooler-account.h"
#include "pooler-notifier.h"
#include "pooler-pool.h"

#define APP_NAME "Codex Pooler"
#define ICON_NAME APPLICATION_ID
#define CATEGORY "network"
/* The same event again within this span is a repeat, not news. */
#define REPEAT_WINDOW (10 * G_TIME_SPAN_MINUTE)

typedef enum {
  EVENT_ACCOUNT_EXHAUSTED,
  EVENT_POOL_EXHAUSTED,
  EVENT_POOL_RESTORED,
  EVENT_REAUTH_REQUIRED,
} EventKind;

/* What a slot last showed, for telling repeats apart (main thread). */
typedef struct
{
  EventKind kind;
  gint64    reset_at;
  gint64    shown_at;  /* monotonic */
} LastEvent;

/* One notification to show; travels main thread -> worker -> main thread.
 * A job with a NULL slot tells the worker to let go of its notifications. */
typedef struct
{
  GWeakRef       notifier;
  char          *slot;
  char          *summary;
  char          *body;
  NotifyUrgency  urgency;
  GError        *error;
} Job;

struct _PoolerNotifier
{
  GObject       parent_instance;

  GMainContext *context;      /* where results come back */
  GThreadPool  *worker;       /* one thread: shows stay in order */
  GHashTable   *last_events;  /* main thread: slot -> LastEvent */
  GHashTable   *shown;        /* worker only: slot -> NotifyNotification */
  gint          cancelled;    /* atomic: disposing, skip what is queued */
  guint         queued;
  guint         sent;
  guint         failed;
  gboolean      failing;      /* the last attempt failed and was logged */
};

G_DEFINE_FINAL_TYPE (PoolerNotifier, pooler_notifier, G_TYPE_OBJECT)

/* libnotify keeps process-wide state (its D-Bus proxy, the list of live
 * notifications, the app name) without locks, so every call into it,
 * from any notifier, holds this lock. */
static GMutex notify_lock;

/* The thread-default context while libnotify runs: its proxy is created
 * there, so the daemon's signals (NotificationClosed, name owner changes)
 * are dispatched by the worker under notify_lock and never race it on the
 * main thread. */
static GMainContext *
get_notify_context (void)
{
  static GMainContext *context;

  if (g_once_init_enter (&context))
    g_once_init_leave (&context, g_main_context_new ());

  return context;
}

static void
job_free (gpointer data)
{
  Job *job = data;

  g_weak_ref_clear (&job->notifier);
  g_free (job->slot);
  g_free (job->summary);
  g_free (job->body);
  g_clear_error (&job->error);
  g_free (job);
}

static Job *
job_new (PoolerNotifier *self,
         const char     *slot,
         const char     *summary,
         const char     *body,
         NotifyUrgency   urgency)
{
  Job *job = g_new0 (Job, 1);

  g_weak_ref_init (&job->notifier, self);
  job->slot = g_strdup (slot);
  job->summary = g_strdup (summary);
  job->body = g_strdup (body);
  job->urgency = urgency;

  return job;
}

/* Called with notify_lock held. */
static gboolean
ensure_notify_init (void)
{
  static int state;  /* 0 not tried, 1 ready, -1 failed */

  if (state == 0)
    state = notify_init (APP_NAME) ? 1 : -1;

  return state > 0;
}

static void
dispatch_pending (GMainContext *context)
{
  while (g_main_context_iteration (context, FALSE))
    ;
}

/* Called in the worker with notify_lock held and the libnotify context
 * pushed. notify_notification_show() is a synchronous D-Bus call that can
 * take libnotify's whole D-Bus timeout (25 s) on a missing or hung daemon. */
static gboolean
show_job (PoolerNotifier  *self,
          Job             *job,
          GError         **error)
{
  NotifyNotification *notification;

  if (!ensure_notify_init ())
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                           "libnotify could not be initialized");
      return FALSE;
    }

  /* One NotifyNotification per slot: it carries the daemon's id, so the
   * next show replaces the notification on screen instead of adding one.
   * If the daemon closed it meanwhile, libnotify reset the id on the
   * NotificationClosed signal dispatched before this. */
  notification = g_hash_table_lookup (self->shown, job->slot);
  if (notification == NULL)
    {
      notification = notify_notification_new (job->summary, job->body, ICON_NAME);
      notify_notification_set_category (notification, CATEGORY);
      notify_notification_set_hint_string (notification, "desktop-entry", APPLICATION_ID);
      g_hash_table_insert (self->shown, g_strdup (job->slot), notification);
    }
  else
    {
      notify_notification_update (notification, job->summary, job->body, ICON_NAME);
    }

  notify_notification_set_urgency (notification, job->urgency);

  return notify_notification_show (notification, error);
}

static gboolean
deliver_result (gpointer data)
{
  Job *job = data;
  g_autoptr(PoolerNotifier) self = g_weak_ref_get (&job->notifier);

  /* The notifier went away while this was in flight. */
  if (self == NULL)
    return G_SOURCE_REMOVE;

  g_assert (self->queued > 0);
  self->queued--;

  if (job->error == NULL)
    {
      self->sent++;
      self->failing = FALSE;
      return G_SOURCE_REMOVE;
    }

  self->failed++;

  /* Once per run of failures: a desktop without a notification daemon
   * would otherwise log every event. */
  if (!self->failing)
    g_message ("Could not show a notification: %s", job->error->message);
  else
    g_debug ("Could not show a notification: %s", job->error->message);
  self->failing = TRUE;

  return G_SOURCE_REMOVE;
}

static void
run_job (gpointer data,
         gpointer user_data)
{
  Job *job = data;
  PoolerNotifier *self = user_data;
  GMainContext *notify_context = get_notify_context ();

  /* Skipped on dispose, except the release job. */
  if (g_atomic_int_get (&self->cancelled) && job->slot != NULL)
    {
      job_free (job);
      return;
    }

  g_mutex_lock (&notify_lock);
  g_main_context_push_thread_default (notify_context);

  /* Apply what the daemon said since the last job first (a notification it
   * closed, a daemon that was restarted and has a new bus name). */
  dispatch_pending (notify_context);

  if (job->slot == NULL)
    g_hash_table_remove_all (self->shown);
  else
    show_job (self, job, &job->error);

  dispatch_pending (notify_context);

  g_main_context_pop_thread_default (notify_context);
  g_mutex_unlock (&notify_lock);

  if (job->slot == NULL)
    {
      job_free (job);
      return;
    }

  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT,
                              deliver_result, job, job_free);
}

static void
queue_event (PoolerNotifier *self,
             EventKind       kind,
             const char     *slot,
             gint64          reset_at,
             const char     *summary,
             const char     *body,
             NotifyUrgency   urgency)
{
  LastEvent *last;
  gint64 now = g_get_monotonic_time ();

  if (self->worker == NULL)
    return;

  /* Only a repeat of what the slot shows now is dropped: after a Pool was
   * restored, the same exhaustion again is news. */
  last = g_hash_table_lookup (self->last_events, slot);
  if (last != NULL &&
      last->kind == kind &&
      last->reset_at == reset_at &&
      now - last->shown_at < REPEAT_WINDOW)
    {
      g_debug ("Not repeating notification %s: %s", slot, summary);
      return;
    }

  if (last == NULL)
    {
      last = g_new0 (LastEvent, 1);
      g_hash_table_insert (self->last_events, g_strdup (slot), last);
    }
  last->kind = kind;
  last->reset_at = reset_at;
  last->shown_at = now;

  self->queued++;
  g_thread_pool_push (self->worker, job_new (self, slot, summary, body, urgency), NULL);
}

static const char *
account_name (PoolerAccount *account)
{
  const char *name = pooler_account_get_label (account);

  if (name == NULL || *name == '\0')
    name = pooler_account_get_email (account);
  if (name == NULL || *name == '\0')
    name = pooler_account_get_id (account);

  return name;
}

/* "14:05" today, "Tue 3 Mar, 14:05" on another day (weekly windows). */
static char *
format_reset_time (gint64 reset_at)
{
  g_autoptr(GDateTime) at = g_date_time_new_from_unix_local (reset_at);
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  int at_y, at_m, at_d, now_y, now_m, now_d;

  if (at == NULL || now == NULL)
    return NULL;

  g_date_time_get_ymd (at, &at_y, &at_m, &at_d);
  g_date_time_get_ymd (now, &now_y, &now_m, &now_d);

  if (at_y == now_y && at_m == now_m && at_d == now_d)
    return g_date_time_format (at, "%H:%M");

  return g_date_time_format (at, "%a %-d %b, %H:%M");
}

static void
on_account_exhausted (PoolerService  *service,
                      PoolerAccount  *account,
                      gint64          reset_at,
                      PoolerNotifier *self)
{
  g_autofree char *slot = g_strdup_printf ("account-exhausted:%s", pooler_account_get_id (account));
  g_autofree char *summary = g_strdup_printf ("Quota spent: %s", account_name (account));
  g_autofree char *when = reset_at > 0 ? format_reset_time (reset_at) : NULL;
  g_autofree char *body = NULL;

  if (when != NULL)
    body = g_strdup_printf ("Back at %s (local time)", when);
  else
    body = g_strdup ("Unusable until its usage window resets");

  queue_event (self, EVENT_ACCOUNT_EXHAUSTED, slot, reset_at,
               summary, body, NOTIFY_URGENCY_NORMAL);
}

static void
on_reauth_required (PoolerService  *service,
                    PoolerAccount  *account,
                    PoolerNotifier *self)
{
  g_autofree char *slot = g_strdup_printf ("reauth-required:%s", pooler_account_get_id (account));
  g_autofree char *summary = g_strdup_printf ("%s needs to sign in again", account_name (account));
  g_auto(GStrv) pools = pooler_store_list_account_pools (pooler_service_get_store (service),
                                                         pooler_account_get_id (account), NULL);
  g_autofree char *body = NULL;

  /* What to run; the window will offer it as an action. */
  if (pools != NULL && pools[0] != NULL)
    body = g_strdup_printf ("Run “codex-pooler account login --pool %s” and sign in to this account",
                            pools[0]);
  else
    body = g_strdup ("Run “codex-pooler account login --pool POOL” and sign in to this account");
  queue_event (self, EVENT_REAUTH_REQUIRED, slot, 0, summary, body, NOTIFY_URGENCY_CRITICAL);
}

/* Exhausted and restored share a slot, so "can serve again" replaces the
 * critical notification, which would otherwise stay on screen. */
static char *
pool_slot (PoolerPool *pool)
{
  return g_strdup_printf ("pool:%" G_GINT64_FORMAT, pooler_pool_get_id (pool));
}

static void
on_pool_exhausted (PoolerService  *service,
                   PoolerPool     *pool,
                   gint64          reset_at,
                   PoolerNotifier *self)
{
  g_autofree char *slot = pool_slot (pool);
  g_autofree char *summary = g_strdup_printf ("Pool “%s” has no usable account",
                                              pooler_pool_get_slug (pool));
  g_autofree char *when = reset_at > 0 ? format_reset_time (reset_at) : NULL;
  g_autofree char *body = NULL;

  if (when != NULL)
    body = g_strdup_printf ("Requests get a usage-limit error until %s", when);
  else
    body = g_strdup ("Requests get a usage-limit error until an account’s usage window resets");

  queue_event (self, EVENT_POOL_EXHAUSTED, slot, reset_at,
               summary, body, NOTIFY_URGENCY_CRITICAL);
}

static void
on_pool_restored (PoolerService  *service,
                  PoolerPool     *pool,
                  PoolerNotifier *self)
{
  g_autofree char *slot = pool_slot (pool);
  g_autofree char *summary = g_strdup_printf ("Pool “%s” can serve again",
                                              pooler_pool_get_slug (pool));

  queue_event (self, EVENT_POOL_RESTORED, slot, 0, summary, NULL,
               NOTIFY_URGENCY_NORMAL);
}

static void
pooler_notifier_dispose (GObject *object)
{
  PoolerNotifier *self = (PoolerNotifier *)object;

  if (self->worker != NULL)
    {
      /* Queued jobs are skipped; one already talking to the daemon is
       * waited for (bounded by libnotify's D-Bus timeout). The release job
       * unrefs the notifications in the worker, like every libnotify call. */
      g_atomic_int_set (&self->cancelled, TRUE);
      g_thread_pool_push (self->worker, g_new0 (Job, 1), NULL);
      g_thread_pool_free (g_steal_pointer (&self->worker), FALSE, TRUE);
    }

  G_OBJECT_CLASS (pooler_notifier_parent_class)->dispose (object);
}

static void
pooler_notifier_finalize (GObject *object)
{
  PoolerNotifier *self = (PoolerNotifier *)object;

  g_assert (self->worker == NULL);
  g_assert (g_hash_table_size (self->shown) == 0);

  g_clear_pointer (&self->shown, g_hash_table_unref);
  g_clear_pointer (&self->last_events, g_hash_table_unref);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (pooler_notifier_parent_class)->finalize (object);
}

static void
pooler_notifier_class_init (PoolerNotifierClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pooler_notifier_dispose;
  object_class->finalize = pooler_notifier_finalize;
}

static void
pooler_notifier_init (PoolerNotifier *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->last_events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->shown = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  /* Not exclusive: the thread exists only while there is work. */
  self->worker = g_thread_pool_new_full (run_job, self, job_free, 1, FALSE, NULL);
}

/**
 * pooler_notifier_new:
 * @service: the service whose events are shown
 *
 * Shows @service's account-exhausted, pool-exhausted, pool-restored and
 * reauth-required events as desktop notifications. account-restored is
 * not shown: accounts come back often and nothing needs doing.
 *
 * Returns: (transfer full): a new notifier, delivering results to the
 *   thread-default main context of the caller
 */
PoolerNotifier *
pooler_notifier_new (PoolerService *service)
{
  PoolerNotifier *self;

  g_return_val_if_fail (POOLER_IS_SERVICE (service), NULL);

  self = g_object_new (POOLER_TYPE_NOTIFIER, NULL);

  g_signal_connect_object (service, "account-exhausted",
                           G_CALLBACK (on_account_exhausted), self, 0);
  g_signal_connect_object (service, "pool-exhausted",
                           G_CALLBACK (on_pool_exhausted), self, 0);
  g_signal_connect_object (service, "pool-restored",
                           G_CALLBACK (on_pool_restored), self, 0);
  g_signal_connect_object (service, "reauth-required",
                           G_CALLBACK (on_reauth_required), self, 0);

  return self;
}

guint
pooler_notifier_get_sent (PoolerNotifier *self)
{
  g_return_val_if_fail (POOLER_IS_NOTIFIER (self), 0);

  return self->sent;
}

guint
pooler_notifier_get_failed (PoolerNotifier *self)
{
  g_return_val_if_fail (POOLER_IS_NOTIFIER (self), 0);

  return self->failed;
}

void
pooler_notifier_flush (PoolerNotifier *self)
{
  g_return_if_fail (POOLER_IS_NOTIFIER (self));

  /* Results are delivered to self->context, the thread-default context
   * of the thread that created the notifier. */
  while (self->queued > 0)
    g_main_context_iteration (self->context, TRUE);
}
