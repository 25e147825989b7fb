/* bench_raw_uring: the io_uring reference echo peer. Plain C on liburing, one thread, one ring.
 * It is what the kernel allows a hand-written server to do, written the way the field has
 * learned to be fast (axboe, "io_uring and networking in 2023"), and the model for orderly's own
 * io_uring backend:
 *
 * - One io_uring_submit_and_wait per loop iteration: the SQEs queued while handling the last
 *   batch of CQEs are submitted and the next batch is waited for in the same syscall.
 * - IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (6.1): completions are produced only
 *   when we wait, in our context, without interrupting the batch we are handling. Falls back to
 *   COOP_TASKRUN (5.19), then to no flag.
 * - Multishot accept: one SQE accepts every connection. Multishot recv: one SQE per connection
 *   receives until EOF or error, into a ring of provided buffers shared by every connection, so
 *   an idle connection owns no buffer. A recv CQE without IORING_CQE_F_MORE ends the recv: res 0
 *   is the peer's FIN, -ENOBUFS means the ring was empty (the data waits in the socket, so the
 *   recv is re-armed once buffers are back, and nothing is lost or reordered); anything else
 *   without an error is re-armed at once.
 * - The buffer ring is mmap'ed and registered by hand (io_uring_register_buf_ring, then
 *   io_uring_buf_ring_init/add/advance): liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring.
 *   Buffers go back to the kernel in one tail update per iteration. The pool is small (256 x
 *   8 KiB) so that the buffers stay in the cache: the ring reuses them in FIFO order.
 * - Sends are SQEs with MSG_WAITALL (the CQE comes when the kernel took all of it), at most one
 *   in flight per connection, so the order on the wire is the order of the echoes. When nothing
 *   is queued, the send goes straight out of the provided buffer the data arrived in, which
 *   returns to the ring when the send completes; data that arrives while a send is in flight is
 *   copied behind it. Past 64 KiB queued the recv is cancelled (reading stops, as in every peer)
 *   and re-armed once the queue has drained.
 * - The end of a connection: a request in the ring holds a reference to the socket, so close()
 *   with a recv still armed sends no FIN and leaves the request hanging. The FIN is an explicit
 *   shutdown(SHUT_WR); close() comes only when no request names the connection any more (a
 *   counter), after a cancel if need be. The same for the listener: the graceful stop cancels the
 *   multishot accept and closes the listener on its final CQE, before any connection is ended.
 *
 * Contract (README.md): echo until the peer's EOF, then FIN, then close; SIGTERM/SIGINT stop
 * gracefully (listener closed, what was read is still echoed, later input discarded, FIN,
 * drain to the peer's EOF, RST to what is left after 5 s, exit 0).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The ring hands buffers out in the order they came back, so a pool much larger than one
 * iteration's worth of receives is always cold: 2048 x 8 KiB ran W2 at 0.75-0.95 x the msgs/s of
 * 256 x 8 KiB (2 MiB, hot in L2), which still covers 1000 busy connections; 64 was too few.
 * -DN_BUFS=8 makes -ENOBUFS the common case (check_peers.py still passes: nothing is lost). */
#ifndef N_BUFS
#define N_BUFS 256 /* provided buffers, a power of two */
#endif
#ifndef BUF_SIZE
#define BUF_SIZE 8192 /* bytes per provided buffer; the pool is touched once at start */
#endif
#define QUEUE_CAP 65536 /* queued output at which reading stops: "one read", as the others */
#define STOP_GRACE_MS 5000
#define BGID 0

/* user_data: a connection pointer (8-byte aligned) | the operation, or a tag with no pointer. */
enum { OP_RECV = 1, OP_SEND = 2 };
enum { UD_ACCEPT = 3, UD_SIGNAL = 4, UD_CANCEL = 5 }; /* pointer part 0 */

struct conn {
    int fd;
    int inflight;         /* requests in the ring that name this connection */
    int recv_armed;       /* the multishot recv is in the ring */
    int recv_cancel;      /* a cancel for it was submitted (output queue full) */
    int starved;          /* the recv ended with -ENOBUFS: re-arm when buffers are back */
    int send_busy;        /* a send is in the ring */
    int held_bid;         /* the provided buffer that send uses, or -1 */
    char* out;            /* the buffer that send uses when it is not a provided one */
    const char* send_ptr; /* what the send in the ring sends */
    size_t send_len;
    char* q; /* output waiting behind the send: q[0, qlen) */
    size_t qlen, qcap;
    int peer_eof, fin_sent, closing;
    struct conn *prev, *next; /* every live connection, for the stop */
};

static struct io_uring ring;
static struct io_uring_buf_ring* br;
static char* bufs;
static int returned;  /* buffers added to the ring since the last tail update */
static int held;      /* provided buffers lent to sends */
static int n_starved; /* connections whose recv ended with -ENOBUFS */
static int listen_fd = -1, sig_fd = -1;
static int accept_armed;
static long long accept_resume_at; /* nonzero while accepting is paused (EMFILE) */
static int stopping, aborted;
static long long stop_deadline;
static struct conn* conns;
static size_t live;

static void die(const char* what, int err) {
    fprintf(stderr, "bench_raw_uring: %s: %s\n", what, strerror(err));
    exit(1);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct io_uring_sqe* get_sqe(void) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe) { /* SQ full (a burst of accepts): submit early, then there is room */
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (!sqe) die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static char* buf_addr(int bid) {
    return bufs + (size_t)bid * BUF_SIZE;
}

static void give_back(int bid) {
    io_uring_buf_ring_add(br, buf_addr(bid), BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(N_BUFS), returned++);
}

static void arm_accept(void) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, UD_ACCEPT);
    accept_armed = 1;
}

static void arm_recv(struct conn* c) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
    c->recv_armed = 1;
    c->recv_cancel = 0;
    c->inflight++;
}

static void submit_send(struct conn* c, const char* p, size_t n) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
    c->send_ptr = p;
    c->send_len = n;
    c->send_busy = 1;
    c->inflight++;
}

static void cancel_fd(struct conn* c) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UD_CANCEL);
}

/* Frees c once it is closing and nothing in the ring names it. Every path that may have ended a
 * connection calls it exactly once, last: nothing touches c after it. */
static void maybe_free(struct conn* c) {
    if (!c->closing || c->inflight > 0) return;
    close(c->fd); /* nothing holds the socket any more: FIN or RST leaves now */
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->out);
    free(c->q);
    free(c);
    live--;
}

/* Ends the connection: RST when `abortive`, else what shutdown() already said. */
static void conn_close(struct conn* c, int abortive) {
    if (c->closing) return;
    c->closing = 1;
    if (abortive) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (c->inflight > 0) cancel_fd(c); /* the final CQEs come, then maybe_free closes */
}

/* After any progress: FIN once nothing is owed and the peer or the stop asked for it; close at
 * the peer's EOF; reading again once the queue has drained. */
static void settle(struct conn* c) {
    if (c->closing || c->send_busy || c->qlen > 0) return;
    if ((c->peer_eof || stopping) && !c->fin_sent) {
        shutdown(c->fd, SHUT_WR);
        c->fin_sent = 1;
    }
    if (c->peer_eof) {
        conn_close(c, 0);
        return;
    }
    if (!c->recv_armed && !c->starved) arm_recv(c);
}

static void queue_output(struct conn* c, const char* p, size_t n) {
    if (c->qlen + n > c->qcap) {
        size_t cap = c->qcap ? c->qcap : 4096;
        while (cap < c->qlen + n)
            cap *= 2;
        char* q = realloc(c->q, cap);
        if (!q) die("realloc", ENOMEM);
        c->q = q;
        c->qcap = cap;
    }
    memcpy(c->q + c->qlen, p, n);
    c->qlen += n;
    if (c->qlen >= QUEUE_CAP && c->recv_armed && !c->recv_cancel) {
        struct io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)c | OP_RECV, 0);
        io_uring_sqe_set_data64(sqe, UD_CANCEL);
        c->recv_cancel = 1;
    }
}

/* Starts sending the queue if no send is in the ring: it becomes the send's buffer, and a new
 * queue grows behind it. */
static void flush_queue(struct conn* c) {
    if (c->send_busy || c->qlen == 0 || c->closing) return;
    c->out = c->q;
    c->q = NULL;
    submit_send(c, c->out, c->qlen);
    c->qlen = c->qcap = 0;
}

static void on_recv(struct conn* c, struct io_uring_cqe* cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = 0;
        c->inflight--;
    }
    int res = cqe->res;
    if (res > 0) {
        int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (stopping || c->closing) {
            give_back(bid); /* the stop drains and discards what arrives after it */
        } else if (!c->send_busy && c->qlen == 0 && held < N_BUFS / 2) {
            c->held_bid = bid; /* echo straight from the buffer it arrived in */
            held++;
            submit_send(c, buf_addr(bid), (size_t)res);
        } else {
            queue_output(c, buf_addr(bid), (size_t)res); /* copied: the buffer goes back */
            give_back(bid);
            flush_queue(c);
        }
    } else if (res == 0) {
        c->peer_eof = 1;
    } else if (res == -ENOBUFS) {
        c->starved = 1;
        n_starved++;
    } else if (res != -ECANCELED) {
        conn_close(c, 0); /* ECONNRESET and friends */
    }
    if (!c->recv_armed) settle(c);
    maybe_free(c);
}

static void on_send(struct conn* c, int res) {
    c->inflight--;
    c->send_busy = 0;
    if (res > 0 && (size_t)res < c->send_len && !c->closing) {
        /* MSG_WAITALL comes back short only when interrupted: send the rest, same buffer */
        submit_send(c, c->send_ptr + res, c->send_len - (size_t)res);
        return;
    }
    if (c->held_bid >= 0) {
        give_back(c->held_bid);
        held--;
        c->held_bid = -1;
    } else {
        free(c->out);
        c->out = NULL;
    }
    if (res <= 0) conn_close(c, 0); /* EPIPE, ECONNRESET: the peer is gone */
    flush_queue(c);
    settle(c);
    maybe_free(c);
}

static void on_accept(struct io_uring_cqe* cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) accept_armed = 0;
    int fd = cqe->res;
    if (fd >= 0) {
        if (stopping) { /* accepted before the cancel took effect: refuse politely */
            close(fd);
        } else {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            struct conn* c = calloc(1, sizeof *c);
            if (!c) die("calloc", ENOMEM);
            c->fd = fd;
            c->held_bid = -1;
            c->next = conns;
            if (conns) conns->prev = c;
            conns = c;
            live++;
            arm_recv(c);
        }
    } else if (fd != -ECANCELED && !stopping) {
        /* EMFILE and friends (the benchmark stays below the limit): pause 100 ms instead of
         * spinning; the client waits in the backlog. */
        fprintf(stderr, "bench_raw_uring: accept: %s\n", strerror(-fd));
        if (!accept_armed) accept_resume_at = now_ms() + 100;
    }
    if (accept_armed || accept_resume_at) return;
    if (!stopping) {
        arm_accept(); /* a multishot accept can end (CQ overflow); go again */
        return;
    }
    /* The stop: the accept is gone, so close() really closes the listener; only then are the
     * connections told. */
    close(listen_fd);
    listen_fd = -1;
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        settle(c); /* FIN now where nothing is owed; the rest send it once drained */
        maybe_free(c);
    }
}

static void begin_stop(void) {
    stopping = 1;
    stop_deadline = now_ms() + STOP_GRACE_MS;
    if (accept_armed) {
        struct io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, UD_ACCEPT, 0);
        io_uring_sqe_set_data64(sqe, UD_CANCEL);
    } else {
        /* accepting was paused: nothing in the ring holds the listener */
        accept_resume_at = 0;
        struct io_uring_cqe fake = {.user_data = UD_ACCEPT, .res = -ECANCELED};
        on_accept(&fake);
    }
}

static void handle(struct io_uring_cqe* cqe) {
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    struct conn* c = (struct conn*)(uintptr_t)(ud & ~(uint64_t)7);
    if (c) {
        if ((ud & 7) == OP_RECV)
            on_recv(c, cqe);
        else
            on_send(c, cqe->res);
        return;
    }
    if (ud == UD_ACCEPT) {
        on_accept(cqe);
    } else if (ud == UD_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof si) == sizeof si) {
        }
        if (!stopping) begin_stop();
    }
    /* UD_CANCEL: the cancelled request's own CQE is what matters */
}

static void setup_ring(void) {
    static const unsigned flags[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                     IORING_SETUP_COOP_TASKRUN, 0};
    static const char* names[] = {"SINGLE_ISSUER|DEFER_TASKRUN", "COOP_TASKRUN", "no flags"};
    int ret = -EINVAL;
    for (size_t i = 0; i < 3 && ret == -EINVAL; i++) {
        /* The CQ holds a burst of multishot CQEs from every connection at once. */
        struct io_uring_params p = {.flags = flags[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
                                    .cq_entries = 16384};
        ret = io_uring_queue_init_params(4096, &ring, &p);
        if (ret == 0 && i > 0) fprintf(stderr, "bench_raw_uring: io_uring with %s\n", names[i]);
    }
    if (ret < 0) die("io_uring_queue_init (kernel.io_uring_disabled? seccomp?)", -ret);

    /* The provided-buffer ring, by hand: page-aligned memory for N_BUFS entries, registered as
     * group BGID, then every buffer added and published with one tail update. */
    br = mmap(NULL, N_BUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
              MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) die("mmap buffer ring", errno);
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = N_BUFS, .bgid = BGID};
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0) die("io_uring_register_buf_ring (needs Linux 5.19)", -ret);
    /* Touched now (MAP_POPULATE) so that the pool is in the RSS from the start: it is shared by
     * every connection, and W5 must not count it as theirs. */
    bufs = mmap(NULL, (size_t)N_BUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
                MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
    if (bufs == MAP_FAILED) die("mmap buffers", errno);
    for (int i = 0; i < N_BUFS; i++)
        give_back(i);
    io_uring_buf_ring_advance(br, returned);
    returned = 0;
}

static int parse_args(int argc, char** argv, const char** host, int* port) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            *port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            *host = argv[++i];
        else
            return -1;
    }
    return 0;
}

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    int port = 0;
    if (parse_args(argc, argv, &host, &port) < 0) {
        fprintf(stderr, "usage: %s [--host H] [--port N]\n", argv[0]);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) die("socket", errno);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 2;
    }
    if (bind(listen_fd, (struct sockaddr*)&sa, sizeof sa) < 0) die("bind", errno);
    if (listen(listen_fd, INT_MAX) < 0) die("listen", errno); /* clamped to somaxconn */
    socklen_t sl = sizeof sa;
    getsockname(listen_fd, (struct sockaddr*)&sa, &sl);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) die("signalfd", errno);

    setup_ring();
    arm_accept();
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_multishot(sqe, sig_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, UD_SIGNAL);

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    while (!stopping || live > 0 || listen_fd >= 0) {
        long long wake = 0; /* absolute ms, 0 = none */
        if (stopping && !aborted) {
            if (now_ms() >= stop_deadline) {
                fprintf(stderr, "bench_raw_uring: stop deadline: aborting %zu connections\n", live);
                aborted = 1;
                for (struct conn *c = conns, *next; c; c = next) {
                    next = c->next;
                    conn_close(c, 1);
                    maybe_free(c);
                }
                continue; /* the cancels' CQEs free the rest */
            }
            wake = stop_deadline;
        } else if (accept_resume_at) {
            if (now_ms() >= accept_resume_at) {
                accept_resume_at = 0;
                arm_accept();
            } else {
                wake = accept_resume_at;
            }
        }
        struct io_uring_cqe* cqe;
        int ret;
        if (wake) {
            long long left = wake - now_ms();
            if (left < 0) left = 0;
            struct __kernel_timespec ts = {.tv_sec = left / 1000,
                                           .tv_nsec = (left % 1000) * 1000000};
            ret = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
        } else {
            ret = io_uring_submit_and_wait(&ring, 1);
        }
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
            die("io_uring_submit_and_wait", -ret);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            handle(cqe);
        }
        io_uring_cq_advance(&ring, seen);
        if (returned) { /* every buffer of this round back to the kernel in one tail update */
            io_uring_buf_ring_advance(br, returned);
            returned = 0;
        }
        if (n_starved && held < N_BUFS) { /* rare: a walk over every connection is fine */
            n_starved = 0;
            for (struct conn* c = conns; c; c = c->next) {
                if (c->starved) {
                    c->starved = 0;
                    settle(c); /* re-arms the recv unless output is still owed */
                }
            }
        }
    }
    io_uring_queue_exit(&ring);
    close(sig_fd);
    return 0;
}
