# Process faults on one member at a time: kill -9 then restart, SIGSTOP
# then SIGCONT, and a mix of both.
# SPDX-License-Identifier: MIT

from scenarios import register


def _one_at_a_time(ctx, kinds):
    c = ctx.cluster
    while ctx.sleep(ctx.rng.uniform(0.3, 1.5)):
        i = ctx.rng.randrange(c.n)
        kind = ctx.rng.choice(kinds)
        hold = ctx.rng.uniform(0.2, 2.5)
        if kind == "kill9":
            c.kill9(i)
            ctx.log("kill -9 node %d for %.1f s" % (i + 1, hold))
            ctx.sleep(hold)
            c.start(i)
        else:
            c.pause(i)
            ctx.log("SIGSTOP node %d for %.1f s" % (i + 1, hold))
            ctx.sleep(hold)
            c.resume(i)


def kill9(ctx):
    """kill -9 of one member, restarted after 0.2-2.5 s"""
    _one_at_a_time(ctx, ("kill9",))


def pause(ctx):
    """SIGSTOP of one member, SIGCONT after 0.2-2.5 s"""
    _one_at_a_time(ctx, ("pause",))


def mixed(ctx):
    """kill -9 or SIGSTOP of one member at a time"""
    _one_at_a_time(ctx, ("kill9", "pause"))


register("kill9", kill9, ci=False)  # the short run has mixed
register("pause", pause, ci=False)
register("mixed", mixed)
