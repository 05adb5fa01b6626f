/* soup-floor: a bare libsoup 3 server that reads the request body and
 * answers every request with the SSE fixture from memory, chunked, the way
 * the gateway answers a stream. It proxies nothing: what it adds over the
 * fake upstream is what libsoup's server alone costs, the floor for any
 * gateway built on it (bench/RESULTS.md, path "libsoup").
 *
 *   soup-floor --fixture FILE --port-file FILE
 *
 * Copyright 2026 The Codex Pooler authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <libsoup/soup.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

static GBytes *answer;

static void
handle (SoupServer        *server,
        SoupServerMessage *msg,
        const char        *path,
        GHashTable        *query,
        gpointer           user_data)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_body_append_bytes (body, answer);
  soup_message_body_complete (body);
}

/* Like the gateway: no Nagle on client sockets. */
static void
request_started (SoupServer        *server,
                 SoupServerMessage *msg,
                 gpointer           user_data)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket != NULL)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
}

int
main (int   argc,
      char *argv[])
{
  const char *fixture = NULL;
  const char *port_file = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *data = NULL;
  g_autofree char *port = NULL;
  gsize length;
  GSList *uris;

  for (int i = 1; i + 1 < argc; i += 2)
    {
      if (strcmp (argv[i], "--fixture") == 0)
        fixture = argv[i + 1];
      else if (strcmp (argv[i], "--port-file") == 0)
        port_file = argv[i + 1];
    }
  if (fixture == NULL || port_file == NULL)
    {
      fprintf (stderr, "usage: soup-floor --fixture FILE --port-file FILE\n");
      return 2;
    }
  if (!g_file_get_contents (fixture, &data, &length, &error))
    {
      fprintf (stderr, "soup-floor: %s\n", error->message);
      return 1;
    }
  answer = g_bytes_new_take (g_steal_pointer (&data), length);

  server = soup_server_new (NULL, NULL);
  soup_server_add_handler (server, NULL, handle, NULL, NULL);
  g_signal_connect (server, "request-started", G_CALLBACK (request_started), NULL);
  if (!soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      fprintf (stderr, "soup-floor: %s\n", error->message);
      return 1;
    }
  uris = soup_server_get_uris (server);
  port = g_strdup_printf ("%d\n", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  if (!g_file_set_contents (port_file, port, -1, &error))
    {
      fprintf (stderr, "soup-floor: %s\n", error->message);
      return 1;
    }

  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 0;
}
