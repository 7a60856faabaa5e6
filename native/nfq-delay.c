/*
 * nfq-delay: holds every packet of one NFQUEUE queue for a one-way delay, then accepts it.
 * Grapevine's netns simulator uses it where the kernel has no sch_netem: one instance per host
 * namespace, fed by an iptables NFQUEUE rule in that namespace's OUTPUT chain.
 *
 *   nfq-delay QUEUE DIST A B [SEED [MAXQ]]
 *     DIST constant: A ms (B unused)      uniform: A..B ms
 *          normal: mean A, stddev B ms     lognormal: median A ms, sigma B
 *
 * Order: a packet is never released before the one queued before it (its due time is at least
 * the previous one's), so each flow stays in order, as netem's default FIFO keeps it; jitter
 * can only push packets later, never reorder them.
 * Bounded: at most MAXQ packets wait (default 65536); a packet that finds the queue full is
 * dropped, as a full router buffer drops it, and counted. The kernel's own queue gets the same
 * bound, without fail-open, so an overloaded delayer loses packets rather than passing them
 * undelayed.
 *
 * Build: cc -O2 -o nfq-delay nfq-delay.c -lnetfilter_queue  (Debian: gcc libnetfilter-queue-dev)
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

struct held { uint32_t id; double due; };

static struct held *ring;
static size_t cap, head, count;
static double last_due;
static unsigned long long passed, dropped;
static volatile sig_atomic_t stopping;

static enum { CONSTANT, UNIFORM, NORMAL, LOGNORMAL } dist;
static double pa, pb;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* xorshift64*: uniform in [0, 1). */
static double uniform01(void) {
  rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
  return (double)((rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static double gaussian(void) {
  double u = uniform01(), v = uniform01();
  return sqrt(-2.0 * log(u > 0 ? u : 1e-12)) * cos(2 * M_PI * v);
}

static double sample_delay(void) {
  double d;
  switch (dist) {
    case UNIFORM: d = pa + (pb - pa) * uniform01(); break;
    case NORMAL: d = pa + pb * gaussian(); break;
    case LOGNORMAL: d = pa * exp(pb * gaussian()); break;
    default: d = pa;
  }
  return d > 0 ? d : 0;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (count == cap) {
    dropped++;
    return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
  }
  double due = now_ms() + sample_delay();
  if (due < last_due) due = last_due;
  last_due = due;
  ring[(head + count) % cap] = (struct held){ id, due };
  count++;
  return 0;
}

static void release_due(struct nfq_q_handle *qh) {
  double t = now_ms();
  while (count > 0 && ring[head].due <= t) {
    nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
    head = (head + 1) % cap;
    count--;
    passed++;
  }
}

static void on_signal(int sig) { (void)sig; stopping = 1; }

static int usage(void) {
  fprintf(stderr, "usage: nfq-delay QUEUE constant|uniform|normal|lognormal A B [SEED [MAXQ]]\n");
  return 64;
}

int main(int argc, char **argv) {
  if (argc < 5) return usage();
  unsigned queue = (unsigned)strtoul(argv[1], NULL, 10);
  if (strcmp(argv[2], "constant") == 0) dist = CONSTANT;
  else if (strcmp(argv[2], "uniform") == 0) dist = UNIFORM;
  else if (strcmp(argv[2], "normal") == 0) dist = NORMAL;
  else if (strcmp(argv[2], "lognormal") == 0) dist = LOGNORMAL;
  else return usage();
  pa = strtod(argv[3], NULL);
  pb = strtod(argv[4], NULL);
  if (argc > 5) rng = strtoull(argv[5], NULL, 10) * 2654435761ULL + 1;
  cap = argc > 6 ? strtoul(argv[6], NULL, 10) : 65536;
  if (cap == 0) return usage();
  ring = calloc(cap, sizeof *ring);
  if (ring == NULL) { perror("nfq-delay: calloc"); return 70; }

  struct nfq_handle *h = nfq_open();
  if (h == NULL) { perror("nfq-delay: nfq_open"); return 69; }
  nfq_unbind_pf(h, AF_INET);
  if (nfq_bind_pf(h, AF_INET) < 0) { perror("nfq-delay: nfq_bind_pf"); return 69; }
  struct nfq_q_handle *qh = nfq_create_queue(h, queue, &on_packet, NULL);
  if (qh == NULL) { perror("nfq-delay: nfq_create_queue"); return 69; }
  /* Metadata only: the verdict needs the packet id, not its bytes. */
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("nfq-delay: nfq_set_mode"); return 69; }
  nfq_set_queue_maxlen(qh, (uint32_t)cap);
  int fd = nfq_fd(h);
  int rcvbuf = 8 * 1024 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);

  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  char buf[65536] __attribute__((aligned));
  /* Ready: the parent waits for this line before it installs the NFQUEUE rule. */
  printf("ready\n");
  fflush(stdout);
  while (!stopping) {
    int timeout = -1;
    if (count > 0) {
      double wait = ring[head].due - now_ms();
      timeout = wait <= 0 ? 0 : (int)ceil(wait);
    }
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, timeout);
    if (r < 0 && errno != EINTR) { perror("nfq-delay: poll"); break; }
    if (r > 0) {
      /* Drain what is there, so a burst does not wait a poll round per packet. */
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) { nfq_handle_packet(h, buf, (int)n); continue; }
        /* ENOBUFS: the kernel dropped messages for us; carry on. */
        if (n < 0 && errno == ENOBUFS) { dropped++; continue; }
        break;
      }
    }
    release_due(qh);
  }
  /* Let what is held go, so a stopping delayer does not strand connections. */
  while (count > 0) {
    nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
    head = (head + 1) % cap;
    count--;
  }
  fprintf(stderr, "nfq-delay: queue %u passed %llu dropped %llu\n", queue, passed, dropped);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
