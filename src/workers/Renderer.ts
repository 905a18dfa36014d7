/**
 * A pool of render worker threads, one a core less one for the event loop (at least one), so
 * a 150,000-seat plan never stalls purchases. Callers queue by priority before they get here;
 * each worker renders one thing at a time. The threads start with the first render: a process
 * with nothing to draw holds no second V8 heap.
 */
import * as Worker from "@effect/platform/Worker"
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import { Deferred, Effect, Exit, FiberId, Layer, Scope } from "effect"
import * as os from "node:os"
import * as v8 from "node:v8"
import * as WorkerThreads from "node:worker_threads"
import { positiveInteger } from "../Settings.js"
import { RenderSeating, RenderTicket, type SeatingDetails, type TicketDetails } from "./RenderProtocol.js"
import { withSpan } from "../Spans.js"

// Compiled (`npm start` runs `dist/`), this code is part of `dist/main.js` and the worker is its
// own bundle, `dist/workers/RenderWorker.js`; from the sources (tests, benches) the worker is
// TypeScript beside this module, loaded through tsx by a small ES module entry.
const compiled = import.meta.url.endsWith(".js")
// The service starts with a large young generation (`--max-semi-space-size=64`) for the main
// thread's many short-lived objects per purchase. That flag is process-wide and read when a heap
// is created, which a worker's `resourceLimits` do not override: set back to V8's default before
// a render thread starts, it gets a young generation of 2 x 16 MB rather than 2 x 64 MB. The main
// thread's heap, created before this runs, keeps its own. A smaller setting is left as it is.
const renderSemiSpace = Math.min(
  16,
  ...[...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].flatMap((arg) => {
    const set = /^--max-semi-space-size=(\d+)$/.exec(arg)
    return set === null ? [] : [Number(set[1])]
  })
)
const spawn = () => {
  v8.setFlagsFromString(`--max-semi-space-size=${renderSemiSpace}`)
  return new WorkerThreads.Worker(new URL(compiled ? "./workers/RenderWorker.js" : "./renderWorker.mjs", import.meta.url))
}

export class Renderer extends Effect.Service<Renderer>()("Renderer", {
  scoped: Effect.gen(function*() {
    const size = yield* positiveInteger("RENDER_WORKERS", Math.max(1, os.availableParallelism() - 1))
    const scope = yield* Effect.scope
    const context = yield* Effect.context<Worker.WorkerManager | Worker.Spawner>()
    const start = Worker.makePoolSerialized({ size, concurrency: 1 }).pipe(
      Effect.tap(() => Effect.logInfo("render workers started").pipe(Effect.annotateLogs({ threads: size }))),
      Scope.extend(scope),
      Effect.provide(context)
    )
    // Started once, by the first render, in a fiber of this service's own: a caller that goes
    // away (a print interrupted by a concert update) does not stop it half-way. A start that
    // fails is tried again by the next render.
    type Pool = Effect.Effect.Success<typeof start>
    type StartError = Effect.Effect.Error<typeof start>
    let started: Deferred.Deferred<Pool, StartError> | undefined
    const pool = Effect.suspend(() => {
      if (started !== undefined) return Deferred.await(started)
      // Claiming the start and forking it happen together: a caller interrupted in between
      // would leave every later render waiting for a start that never comes.
      return Effect.uninterruptibleMask((restore) => {
        if (started !== undefined) return restore(Deferred.await(started))
        const deferred = Deferred.unsafeMake<Pool, StartError>(FiberId.none)
        started = deferred
        return Effect.forkIn(
          Effect.flatMap(Effect.exit(start), (exit) => {
            if (Exit.isFailure(exit)) started = undefined
            return Deferred.done(deferred, exit)
          }),
          scope
        ).pipe(Effect.zipRight(restore(Deferred.await(deferred))))
      })
    })
    return {
      size,
      ticket: (details: TicketDetails) =>
        Effect.flatMap(pool, (workers) => workers.executeEffect(new RenderTicket(details))).pipe(
          withSpan("Renderer.ticket", { captureStackTrace: false, attributes: { ticketId: details.ticketId } })
        ),
      seating: (details: SeatingDetails) =>
        Effect.flatMap(pool, (workers) => workers.executeEffect(new RenderSeating(details))).pipe(
          withSpan("Renderer.seating", { captureStackTrace: false, attributes: { concertId: details.concertId } })
        )
    } as const
  })
}) {
  static readonly Live = Renderer.Default.pipe(Layer.provide(NodeWorker.layer(spawn)))
}
