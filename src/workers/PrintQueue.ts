/**
 * Ticket printing. The tickets table is the durable queue (PENDING rows, re-queued from
 * start on); this process keeps the PENDING tickets it knows in a priority queue ordered by
 * concert date, so tonight's tickets print before a backlog for next year. A fixed number of
 * fibers take jobs and run them in a FiberMap keyed by ticket id: a concert update removes its
 * queued jobs and interrupts its running ones, then queues them again with the new details.
 * Whatever the timing, a render is only stored if the concert is still at the version it
 * showed (PrintsRepo.store); a stale one is redone.
 */
import { Effect, Fiber, FiberMap, Layer, Option, Order, Schedule, STM, TPriorityQueue, type Tracer } from "effect"
import { identity } from "../actors/ChangeSpans.js"
import * as Metrics from "../Metrics.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { Ownership } from "../actors/Ownership.js"
import { type PendingTicket, PrintsRepo } from "../sql/PrintsRepo.js"
import { Renderer } from "./Renderer.js"
import { CurrentOrganiser, organiserOf } from "../domain/Organiser.js"
import { OrganiserDatabases } from "../sql/Organisers.js"
import { currentSpan, withSpan } from "../Spans.js"

interface Job extends PendingTicket {
  readonly seq: number
  /** When this process queued it: time to PRINTED is measured from here. */
  readonly queuedAt: number
  /** The request that asked for it, when it was asked here: the print's trace links to it. */
  readonly cause: Tracer.ExternalSpan | undefined
}

const day = 86_400_000

/** The print queue's bands by the concert's date: tonight's tickets, this week's, the rest. */
const bandOf = (date: string, today: number): "today" | "week" | "later" => {
  const days = (Date.parse(date) - today) / day
  return days < 1 ? "today" : days < 7 ? "week" : "later"
}

const depthGauges = {
  today: Metrics.labelled(Metrics.printQueueDepth, { band: "today" }),
  week: Metrics.labelled(Metrics.printQueueDepth, { band: "week" }),
  later: Metrics.labelled(Metrics.printQueueDepth, { band: "later" })
} as const
const printed = Metrics.labelled(Metrics.prints, { outcome: "printed" })
const failed = Metrics.labelled(Metrics.prints, { outcome: "error" })

/** Soonest concert first (dates are `YYYY-MM-DD`, so text order is date order), then arrival. */
const byUrgency: Order.Order<Job> = Order.combine(
  Order.mapInput(Order.string, (job: Job) => job.date),
  Order.mapInput(Order.number, (job: Job) => job.seq)
)

/** A render that lost to a concert update is redone; this bounds a pathological loop. */
const maxAttempts = 5

export class PrintQueue extends Effect.Service<PrintQueue>()("PrintQueue", {
  scoped: Effect.gen(function*() {
    const prints = yield* PrintsRepo
    const renderer = yield* Renderer
    const users = yield* UserDirectory
    const ownership = yield* Ownership
    const organisers = yield* OrganiserDatabases
    const queue = yield* TPriorityQueue.empty<Job>(byUrgency)
    const running = yield* FiberMap.make<string>()
    /** Every job queued or running here, by ticket id. */
    const known = new Map<string, Job>()
    let seq = 0

    /** Queues a PENDING ticket here if this process owns its concert; its owner prints it otherwise. */
    const enqueue = (ticket: PendingTicket) =>
      Effect.flatMap(currentSpan, (span) => {
        if (known.has(ticket.ticketId) || !ownership.owns(ticket.concertId)) return Effect.void
        const job: Job = {
          ticketId: ticket.ticketId,
          concertId: ticket.concertId,
          date: ticket.date,
          seq: seq++,
          queuedAt: Date.now(),
          cause: Option.isSome(span) ? identity(span.value) : undefined
        }
        known.set(job.ticketId, job)
        return STM.commit(TPriorityQueue.offer(queue, job))
      })

    const print = (job: Job, attempt: number): Effect.Effect<void> =>
      Effect.gen(function*() {
        const found = yield* prints.input(job.ticketId)
        if (Option.isNone(found) || found.value.printStatus !== "PENDING") return
        const input = found.value
        const user = users.find(input.userId)
        const rendered = yield* Effect.either(renderer.ticket({
          ticketId: input.ticketId,
          concert: { id: input.concertId, name: input.name, date: input.date, venue: input.venue },
          user: Option.match(user, {
            onNone: () => ({ name: input.userId, email: "" }),
            onSome: ({ email, name }) => ({ name, email })
          })
        }))
        if (rendered._tag === "Left") {
          yield* Effect.logError("ticket render failed").pipe(
            Effect.annotateLogs({ ticketId: job.ticketId, error: String(rendered.left) })
          )
          failed.unsafeUpdate(1, [])
          return yield* prints.markError(job.ticketId)
        }
        const stored = yield* prints.store(input.ticketId, input.concertId, input.version, rendered.right)
        if (!stored && attempt < maxAttempts) return yield* print(job, attempt + 1)
        if (stored) {
          printed.unsafeUpdate(1, [])
          Metrics.printSeconds.unsafeUpdate((Date.now() - job.queuedAt) / 1000, [])
        }
      }).pipe(
        // In the database of the ticket's organiser, which its id names.
        Effect.locally(CurrentOrganiser, organiserOf(job.ticketId)),
        // A trace of its own, linked to the request that asked for it.
        withSpan("PrintQueue.print", {
          root: true,
          captureStackTrace: false,
          attributes: { ticketId: job.ticketId, concertId: job.concertId, attempt },
          links: job.cause === undefined ? [] : [{ _tag: "SpanLink", span: job.cause, attributes: {} }]
        })
      )

    const worker = STM.commit(TPriorityQueue.take(queue)).pipe(
      Effect.flatMap((job) =>
        FiberMap.run(running, job.ticketId, print(job, 1)).pipe(
          Effect.flatMap(Fiber.await),
          Effect.ensuring(Effect.sync(() => {
            if (known.get(job.ticketId) === job) known.delete(job.ticketId)
          }))
        )
      ),
      Effect.catchAllCause((cause) => Effect.logError("print worker failed", cause)),
      Effect.forever
    )
    // A job is mostly waiting (database reads and the transactional store); enough fibers per
    // render thread keep the thread busy. A job already taken is never overtaken, so this is
    // also how many far-future jobs tonight's ticket may wait behind.
    const workers = renderer.size * 4
    yield* Effect.forkScoped(Effect.all(Array.from({ length: workers }, () => worker), { concurrency: "unbounded" }))

    // The queue's depth by band, for `/metrics` and the dashboard, once a second.
    yield* Effect.forkScoped(Effect.repeat(
      Effect.sync(() => {
        const today = Date.parse(new Date().toISOString().slice(0, 10))
        const depth = { today: 0, week: 0, later: 0 }
        for (const job of known.values()) depth[bandOf(job.date, today)] += 1
        depthGauges.today.unsafeUpdate(depth.today, [])
        depthGauges.week.unsafeUpdate(depth.week, [])
        depthGauges.later.unsafeUpdate(depth.later, [])
      }),
      Schedule.spaced("1 second")
    ))

    // The durable queue: whatever was PENDING when the last process stopped, in every
    // organiser's database, and, with several processes, what the others were asked to print
    // (a process that serves HTTP only renders nothing): looked at again every two seconds in
    // the organisers' databases used here lately, and every minute in all of them. Also with one
    // process: a ticket is queued where its concert's shard is held, and at start the shards
    // may not be held yet when the first look is taken.
    const requeue = (which: "all" | { readonly since: number }) =>
      organisers.forEach(which, () => prints.pending.pipe(Effect.flatMap(Effect.forEach(enqueue, { discard: true }))))
    yield* Effect.gen(function*() {
      for (let round = 0;; round++) {
        const started = Date.now()
        yield* requeue(round % 30 === 0 ? "all" : { since: started - 5000 })
        yield* Effect.sleep("2 seconds")
      }
    }).pipe(Effect.forkScoped)

    return {
      /** Queue a ticket that is PENDING in the database (a no-op when it is already queued here). */
      enqueue,
      /**
       * The concert changed: drop its queued jobs, interrupt its running ones, and queue them all
       * again so they render the new details.
       */
      concertChanged: (concertId: string, date: string) =>
        Effect.gen(function*() {
          const affected = [...known.values()].filter((job) => job.concertId === concertId)
          yield* STM.commit(TPriorityQueue.removeIf(queue, (job) => job.concertId === concertId))
          for (const job of affected) known.delete(job.ticketId)
          yield* Effect.forEach(affected, (job) => FiberMap.remove(running, job.ticketId), { discard: true })
          yield* Effect.forEach(affected, (job) => enqueue({ ticketId: job.ticketId, concertId: job.concertId, date }), { discard: true })
        }).pipe(withSpan("PrintQueue.concertChanged", { captureStackTrace: false, attributes: { concertId } }))
    } as const
  })
}) {
  /**
   * For a process that serves HTTP only: a print request is the ticket's PENDING row, which the
   * runners' queues read; nothing is rendered here.
   */
  static readonly DatabaseOnly = Layer.succeed(
    PrintQueue,
    new PrintQueue({ enqueue: () => Effect.void, concertChanged: () => Effect.void })
  )
}
