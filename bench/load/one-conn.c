// The lightest possible one-connection client, for tail measurements that wrk's own behaviour does not blur: one
// keep-alive TCP connection, one request at a time (compare.sh's small chat completion), each timed from the write to
// the last byte of the answer with CLOCK_MONOTONIC. Prints one line: n, then p50 p90 p99 p99.9 max in microseconds.
// Build: cc -O2 -o one-conn bench/load/one-conn.c     Run: one-conn PORT SECONDS "Bearer KEY" [MODEL]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "us-clock.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: one-conn PORT SECONDS AUTHORIZATION [MODEL]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double secs = atof(argv[2]);
  const char *model = argc > 4 ? argv[4] : "gpt-4o-mini";
  char body[512];
  snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"Say hello in one short sentence, please.\"}],\"max_tokens\":64}", model);
  char req[2048];
  int rl = snprintf(req, sizeof req, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nAuthorization: %s\r\nContent-Length: %zu\r\n\r\n%s", port, argv[3], strlen(body), body);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    return 1;
  }
  size_t cap = 1 << 20, n = 0;
  double *lat = malloc(cap * sizeof(double));
  static char buf[65536];
  double end = now_us() + secs * 1e6;
  while (now_us() < end) {
    double t0 = now_us();
    if (write(fd, req, rl) != rl) {
      perror("write");
      return 1;
    }
    long got = 0, need = -1;
    for (;;) {
      ssize_t r = read(fd, buf + got, sizeof buf - got - 1);
      if (r <= 0) {
        fprintf(stderr, "connection closed or failed after %zu requests\n", n);
        return 1;
      }
      got += r;
      buf[got] = 0;
      char *h = strstr(buf, "\r\n\r\n");
      if (h != NULL && need < 0) {
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
          fprintf(stderr, "not a 200: %.60s\n", buf);
          return 1;
        }
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl == NULL || cl > h) {
          fprintf(stderr, "answer without content-length\n");
          return 1;
        }
        need = (h + 4 - buf) + atol(cl + 17);
      }
      if (need >= 0 && got >= need) break;
    }
    if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof(double));
    lat[n++] = now_us() - t0;
  }
  qsort(lat, n, sizeof(double), cmp_double);
  printf("%zu %.0f %.0f %.0f %.0f %.0f\n", n, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100], lat[n * 999 / 1000], lat[n - 1]);
  return 0;
}
