/* test-acceptor.c: listening sockets accepted from in batches, over real
 * loopback TCP connections in a real main context.
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pooler-acceptor.h"

typedef struct
{
  PoolerPoller   *poller;
  PoolerAcceptor *acceptor;
  GPtrArray      *accepted;    /* GSocketConnection */
  GPtrArray      *clients;     /* GSocket */
  guint16         port;
} Fixture;

/* The acceptor gives a bare descriptor; the tests keep it in a
 * GSocketConnection. */
static void
on_accept (int      fd,
           gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd (fd, &error);

  g_assert_no_error (error);
  g_ptr_array_add (f->accepted, g_socket_connection_factory_create_connection (socket));
}

static void
fixture_set_up (Fixture *f)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) error = NULL;

  f->poller = pooler_poller_new (NULL, &error);
  g_assert_no_error (error);
  f->accepted = g_ptr_array_new_with_free_func (g_object_unref);
  f->clients = g_ptr_array_new_with_free_func (g_object_unref);
  f->acceptor = pooler_acceptor_new (f->poller, 256, on_accept, f);
  g_assert_true (pooler_acceptor_add_address (f->acceptor, address, &effective, &error));
  g_assert_no_error (error);
  f->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_assert_cmpuint (f->port, >, 0);
}

static void
fixture_tear_down (Fixture *f)
{
  g_clear_pointer (&f->acceptor, pooler_acceptor_free);
  g_clear_pointer (&f->poller, pooler_poller_unref);
  g_ptr_array_unref (f->accepted);
  g_ptr_array_unref (f->clients);
}

/* @n connections, each complete (in the listening socket's queue) on
 * return: the handshake is the kernel's. */
static void
connect_clients (Fixture *f,
                 guint    n)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, f->port);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_TCP, &error);

      g_assert_no_error (error);
      g_assert_true (g_socket_connect (socket, address, NULL, &error));
      g_assert_no_error (error);
      g_ptr_array_add (f->clients, g_steal_pointer (&socket));
    }
}

/* Connections that wait together are taken in one main-loop turn, up to
 * the batch; the rest in the next. GSocketService took one per turn. */
static void
test_burst_in_one_turn (void)
{
  Fixture f = { 0 };

  fixture_set_up (&f);
  connect_clients (&f, POOLER_ACCEPTOR_BATCH + 16);

  g_assert_true (g_main_context_iteration (NULL, TRUE));
  g_assert_cmpuint (f.accepted->len, ==, POOLER_ACCEPTOR_BATCH);
  g_assert_true (g_main_context_iteration (NULL, TRUE));
  g_assert_cmpuint (f.accepted->len, ==, POOLER_ACCEPTOR_BATCH + 16);

  /* Each is a working connection to its client. */
  for (guint i = 0; i < f.accepted->len; i++)
    {
      GSocket *server_side = g_socket_connection_get_socket (g_ptr_array_index (f.accepted, i));

      g_assert_true (G_IS_TCP_CONNECTION (g_ptr_array_index (f.accepted, i)));
      g_assert_cmpint (g_socket_send (server_side, "x", 1, NULL, NULL), ==, 1);
    }

  fixture_tear_down (&f);
}

/* An accepted descriptor is ready for the hot path as it is: non-blocking,
 * close-on-exec, and with Nagle off (inherited from the listening
 * socket, so no call per connection sets it). */
static void
test_accepted_descriptor (void)
{
  Fixture f = { 0 };

  fixture_set_up (&f);
  connect_clients (&f, 3);
  while (f.accepted->len < 3)
    g_main_context_iteration (NULL, TRUE);

  for (guint i = 0; i < f.accepted->len; i++)
    {
      GSocket *server_side = g_socket_connection_get_socket (g_ptr_array_index (f.accepted, i));
      int fd = g_socket_get_fd (server_side);
      int nodelay = 0;
      socklen_t length = sizeof nodelay;

      g_assert_cmpint (getsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length), ==, 0);
      g_assert_cmpint (nodelay, ==, 1);
      g_assert_true (fcntl (fd, F_GETFL) & O_NONBLOCK);
      g_assert_true (fcntl (fd, F_GETFD) & FD_CLOEXEC);
    }

  fixture_tear_down (&f);
}

/* Freed, the acceptor closes its socket: nobody can connect any more,
 * and nothing is called. */
static void
test_free_closes (void)
{
  Fixture f = { 0 };
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocket) late = NULL;
  g_autoptr(GError) error = NULL;

  fixture_set_up (&f);
  connect_clients (&f, 2);
  g_clear_pointer (&f.acceptor, pooler_acceptor_free);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (f.accepted->len, ==, 0);

  address = g_inet_socket_address_new (loopback, f.port);
  late = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_false (g_socket_connect (late, address, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);

  fixture_tear_down (&f);
}

static int
highest_open_fd (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  int highest = -1;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    highest = MAX (highest, atoi (name));

  return highest;
}

/* Out of descriptors, the acceptor rests instead of spinning on the
 * ready socket, and takes the waiting connections once some are free:
 * none is lost. */
static void
test_out_of_descriptors (void)
{
  if (g_test_subprocess ())
    {
      Fixture f = { 0 };
      g_autoptr(GArray) fillers = g_array_new (FALSE, FALSE, sizeof (int));
      struct rlimit limit, saved;
      guint turns = 0;
      gint64 until;
      int top;

      fixture_set_up (&f);
      connect_clients (&f, 6);

      /* Fill every hole below the highest descriptor, then allow exactly
       * two more. */
      top = highest_open_fd ();
      for (;;)
        {
          int fd = dup (0);

          g_assert_cmpint (fd, >=, 0);
          g_array_append_val (fillers, fd);
          if (fd > top)
            break;
        }
      g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
      saved = limit;
      limit.rlim_cur = (rlim_t) g_array_index (fillers, int, fillers->len - 1) + 3;
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

      /* Two are taken, then the socket rests: a few turns in 300 ms (a
       * spinning watch would turn thousands of times). */
      until = g_get_monotonic_time () + 300 * 1000;
      while (g_get_monotonic_time () < until)
        {
          g_main_context_iteration (NULL, TRUE);
          turns++;
        }
      g_assert_cmpuint (f.accepted->len, ==, 2);
      g_assert_cmpuint (turns, <, 50);

      /* Descriptors come free: the rest are taken, none lost. */
      g_ptr_array_set_size (f.accepted, 0);
      for (guint i = 0; i < fillers->len; i++)
        close (g_array_index (fillers, int, i));
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
      until = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
      while (f.accepted->len < 4 && g_get_monotonic_time () < until)
        g_main_context_iteration (NULL, TRUE);
      g_assert_cmpuint (f.accepted->len, ==, 4);

      fixture_tear_down (&f);
      return;
    }

  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/acceptor/burst-in-one-turn", test_burst_in_one_turn);
  g_test_add_func ("/acceptor/accepted-descriptor", test_accepted_descriptor);
  g_test_add_func ("/acceptor/free-closes", test_free_closes);
  g_test_add_func ("/acceptor/out-of-descriptors", test_out_of_descriptors);

  return g_test_run ();
}
