/* test-poller.c: sockets watched through one epoll set, in a real main
 * context, over real socket pairs.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <sys/socket.h>
#include <unistd.h>

#include "pooler-poller.h"

typedef struct
{
  PoolerWatch  *self;
  PoolerWatch **other;      /* freed from this callback when set */
  guint         calls;
  GIOCondition  last;
  gboolean      free_self;
} Seen;

static void
on_ready (GIOCondition condition,
          gpointer     user_data)
{
  Seen *seen = user_data;

  seen->calls++;
  seen->last = condition;
  if (seen->other != NULL && *seen->other != NULL)
    g_clear_pointer (seen->other, pooler_watch_free);
  if (seen->free_self)
    g_clear_pointer (&seen->self, pooler_watch_free);
}

static void
iterate (void)
{
  /* A few turns (unread input stays ready: never "until idle"), and a
   * little time for the kernel. */
  for (guint i = 0; i < 5; i++)
    {
      for (guint j = 0; j < 4; j++)
        g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static void
test_input_output_hangup (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPoller) poller = pooler_poller_new (NULL, &error);
  Seen seen = { 0 };
  int fds[2];
  char byte;

  g_assert_no_error (error);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);

  seen.self = pooler_watch_new (poller, fds[0], G_IO_IN, on_ready, &seen);
  g_assert_cmpuint (pooler_poller_get_n_watches (poller), ==, 1);
  iterate ();
  g_assert_cmpuint (seen.calls, ==, 0);

  /* Level-triggered: unread input is reported again, read input not. */
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  iterate ();
  g_assert_cmpuint (seen.calls, >, 1);
  g_assert_true (seen.last & G_IO_IN);
  g_assert_cmpint (read (fds[0], &byte, 1), ==, 1);
  iterate ();
  seen.calls = 0;
  iterate ();
  g_assert_cmpuint (seen.calls, ==, 0);

  /* Output when asked for, and no longer when not. */
  pooler_watch_set_events (seen.self, G_IO_OUT);
  g_assert_cmpint (pooler_watch_get_events (seen.self), ==, G_IO_OUT);
  iterate ();
  g_assert_cmpuint (seen.calls, >, 0);
  g_assert_true (seen.last & G_IO_OUT);
  pooler_watch_set_events (seen.self, 0);
  iterate ();
  seen.calls = 0;
  iterate ();
  g_assert_cmpuint (seen.calls, ==, 0);

  /* A hang-up comes even to a watch that asks for nothing. */
  close (fds[1]);
  seen.free_self = TRUE;
  iterate ();
  g_assert_cmpuint (seen.calls, ==, 1);
  g_assert_true (seen.last & G_IO_HUP);
  g_assert_null (seen.self);
  g_assert_cmpuint (pooler_poller_get_n_watches (poller), ==, 0);
  close (fds[0]);
}

/* A callback frees another watch that is ready in the same batch: that
 * one is not called (and nothing reads freed memory: ASan, valgrind). */
static void
test_free_other_in_batch (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPoller) poller = pooler_poller_new (NULL, &error);
  Seen a = { 0 }, b = { 0 };
  int one[2], two[2];

  g_assert_no_error (error);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, one), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, two), ==, 0);
  a.self = pooler_watch_new (poller, one[0], G_IO_IN, on_ready, &a);
  b.self = pooler_watch_new (poller, two[0], G_IO_IN, on_ready, &b);
  /* Whichever comes first frees the other, and itself. */
  a.other = &b.self;
  b.other = &a.self;
  a.free_self = b.free_self = TRUE;
  g_assert_cmpint (write (one[1], "x", 1), ==, 1);
  g_assert_cmpint (write (two[1], "y", 1), ==, 1);
  g_usleep (1000);

  iterate ();
  g_assert_cmpuint (a.calls + b.calls, ==, 1);
  g_assert_null (a.self);
  g_assert_null (b.self);
  g_assert_cmpuint (pooler_poller_get_n_watches (poller), ==, 0);

  close (one[0]);
  close (one[1]);
  close (two[0]);
  close (two[1]);
}

/* The owner lets go while a watch is left: the watch keeps the poller
 * working until it is freed, in its own callback here. */
static void
test_outlives_owner (void)
{
  g_autoptr(GError) error = NULL;
  PoolerPoller *poller = pooler_poller_new (NULL, &error);
  Seen seen = { 0 };
  int fds[2];

  g_assert_no_error (error);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);
  seen.self = pooler_watch_new (poller, fds[0], G_IO_IN, on_ready, &seen);
  seen.free_self = TRUE;
  pooler_poller_unref (poller);

  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  iterate ();
  g_assert_cmpuint (seen.calls, ==, 1);
  g_assert_null (seen.self);
  close (fds[0]);
  close (fds[1]);
}

/* A batch of two: each turn calls two of five ready watches, and the
 * kernel hands them out in turn, so after five turns each was called
 * twice; none waits for ever behind the others. 0 is the default batch
 * again: every ready watch in one turn. */
static void
test_max_events (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PoolerPoller) poller = pooler_poller_new (NULL, &error);
  Seen seen[5] = { { 0 } };
  int fds[5][2];

  g_assert_no_error (error);
  pooler_poller_set_max_events (poller, 2);
  for (guint i = 0; i < G_N_ELEMENTS (seen); i++)
    {
      g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds[i]), ==, 0);
      seen[i].self = pooler_watch_new (poller, fds[i][0], G_IO_IN, on_ready, &seen[i]);
      /* Never read: the watch stays ready. */
      g_assert_cmpint (write (fds[i][1], "x", 1), ==, 1);
    }

  for (guint turn = 1; turn <= 5; turn++)
    {
      guint total = 0;

      g_assert_true (g_main_context_iteration (NULL, FALSE));
      for (guint i = 0; i < G_N_ELEMENTS (seen); i++)
        total += seen[i].calls;
      g_assert_cmpuint (total, ==, 2 * turn);
    }
  for (guint i = 0; i < G_N_ELEMENTS (seen); i++)
    {
      g_assert_cmpuint (seen[i].calls, ==, 2);
      seen[i].calls = 0;
    }

  pooler_poller_set_max_events (poller, 0);
  g_assert_true (g_main_context_iteration (NULL, FALSE));
  for (guint i = 0; i < G_N_ELEMENTS (seen); i++)
    {
      g_assert_cmpuint (seen[i].calls, ==, 1);
      g_clear_pointer (&seen[i].self, pooler_watch_free);
      close (fds[i][0]);
      close (fds[i][1]);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/poller/input-output-hangup", test_input_output_hangup);
  g_test_add_func ("/poller/free-other-in-batch", test_free_other_in_batch);
  g_test_add_func ("/poller/outlives-owner", test_outlives_owner);
  g_test_add_func ("/poller/max-events", test_max_events);

  return g_test_run ();
}
