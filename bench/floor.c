/*
 * The start-up floor for bench/run.sh, and the line counter both sides are
 * timed with.
 *
 *   floor spawn N COMMAND
 *       Starts N `/bin/sh -c COMMAND` with posix_spawn, each in its own process
 *       group with an empty signal mask, all sharing this program's stdin and
 *       stdout. On SIGTERM it sends SIGTERM to every group, reaps every child
 *       and exits: the least a supervisor can do.
 *
 *   floor count N START FIFO
 *       Reads lines from stdin. When the N-th line equal to "up" or ending in
 *       " up" arrives, writes the seconds since START (a $EPOCHREALTIME) to
 *       FIFO; at end of input before that, writes "fail". Then reads on until
 *       end of input, so the writer never sees a broken pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int spawn_all(long n, char *command)
{
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    sigset_t term, empty;
    posix_spawnattr_t attr;
    char *argv[] = {"/bin/sh", "-c", command, NULL};
    int sig;

    if (pids == NULL)
        return 2;
    /* SIGTERM waits in sigwait; the children start with nothing blocked. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    sigemptyset(&empty);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &empty);
    for (long i = 0; i < n; i++) {
        int err = posix_spawn(&pids[i], argv[0], NULL, &attr, argv, environ);
        if (err != 0) {
            fprintf(stderr, "floor: posix_spawn: %s\n", strerror(err));
            return 2;
        }
    }
    sigwait(&term, &sig);
    for (long i = 0; i < n; i++)
        killpg(pids[i], SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *fifo, const char *text)
{
    int fd = open(fifo, O_WRONLY);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0)
            perror("floor: write");
        close(fd);
    }
}

static int count(long n, double start, const char *fifo)
{
    static char buf[1 << 16];
    long seen = 0;
    int reported = 0;
    /* The last two bytes before the newline, and the one before them. */
    char prev[3] = {0, 0, 0};
    ssize_t got;

    while ((got = read(0, buf, sizeof buf)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (ssize_t i = 0; i < got; i++) {
            char c = buf[i];
            if (c == '\n') {
                if (prev[1] == 'u' && prev[2] == 'p' && (prev[0] == 0 || prev[0] == ' '))
                    seen++;
                memset(prev, 0, sizeof prev);
                if (seen == n && !reported) {
                    char text[32];
                    snprintf(text, sizeof text, "%.4f\n", now() - start);
                    report(fifo, text);
                    reported = 1;
                }
            } else {
                prev[0] = prev[1];
                prev[1] = prev[2];
                prev[2] = c;
            }
        }
    }
    if (!reported)
        report(fifo, "fail\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "spawn") == 0)
        return spawn_all(atol(argv[2]), argv[3]);
    if (argc == 5 && strcmp(argv[1], "count") == 0)
        return count(atol(argv[2]), atof(argv[3]), argv[4]);
    fprintf(stderr, "usage: floor spawn N COMMAND | floor count N START FIFO\n");
    return 2;
}
