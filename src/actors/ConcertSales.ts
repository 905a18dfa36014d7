/**
 * The buying side of the concert entities, one per process. Buyers of one concert who arrive
 * while that concert's previous message is in flight wait together and go as the next
 * `Purchases` message: one message per concert in flight per process, however many buyers.
 * Under a burst that is what keeps the cluster's per-message cost (envelope, mailbox, reply,
 * fibers) off the per-buyer path; the entity then journals all of a batch in one statement.
 */
import { Cause, Clock, Config, Duration, Effect, Exit, FiberId, FiberRef, FiberSet, Option, Schedule, type Tracer } from "effect"
import {
  ConcertEntity,
  type HoldOrder,
  JournalUnavailable,
  type Order,
  type PurchaseOrder,
  type PurchaseOutcome,
  type RegisterOrder
} from "../domain/ConcertEntity.js"
import type {
  AlreadyRegistered,
  ByDraw,
  IdempotencyKeyReused,
  NotEnoughSeats,
  NotInLine,
  QuantityOverLimit,
  SaleNotOpen,
  SoldOut
} from "../domain/Errors.js"
import { RegistrationRecord } from "../domain/Registration.js"
import { ReservationRecord } from "../domain/Reservation.js"
import { TicketRecord } from "../domain/Ticket.js"
import { positiveInteger, purchaseTimeoutMillis } from "../Settings.js"
import { type DeskOutcome, fromDesk, SalesDesk } from "../domain/SalesDesk.js"
import { DeskRoutes } from "./DeskRoutes.js"
import { LocalConcerts } from "./LocalConcerts.js"
import { Ownership } from "./Ownership.js"
import { currentSpan, spanOf, withSpan } from "../Spans.js"

type Client = Effect.Effect.Success<typeof ConcertEntity.client>
type PurchasesError = Effect.Effect.Error<ReturnType<ReturnType<Client>["Purchases"]>>
/** What an order can get: a ticket, or a reservation holding its seats. */
type Granted = TicketRecord | ReservationRecord | RegistrationRecord
/** Why an order got nothing, as the entity answers it. */
type NoTicket = Exclude<PurchaseOutcome, Granted>

/** How long after an order's deadline its answer may still arrive before the buyer is told 503. */
const answerGrace = 1000

const notInTime = new JournalUnavailable({ reason: "the purchase could not be saved in time" })

/** The earliest deadline of `orders`, if any has one. */
export const earliestDeadline = (orders: ReadonlyArray<Order>): number | undefined => {
  let earliest: number | undefined
  for (const order of orders) {
    if (order.deadline !== undefined && (earliest === undefined || order.deadline < earliest)) earliest = order.deadline
  }
  return earliest
}

/** A message that failed without an answer from the entity: its orders may or may not be written. */
const lost = (cause: Cause.Cause<unknown>) => Option.isNone(Cause.failureOption(cause))

/** Why a purchase of one seat got no ticket. */
export type BuyRefusal = Exclude<NoTicket, NotEnoughSeats | QuantityOverLimit | AlreadyRegistered | NotInLine> | PurchasesError

/** What an order's buyer is told: its grant, or why it got none. */
export type Answer<A extends Granted, E> = (exit: Exit.Exit<A, E>) => void

interface Waiting {
  readonly order: Order
  /** Told the order's outcome, once: the first answer counts (see `answer`). */
  readonly done: Answer<Granted, NoTicket | PurchasesError>
  answered: boolean
  /** The buyer's request, which the batch's span links to. */
  readonly span: Tracer.AnySpan | undefined
  /** An order from another process's desk: it never goes on to a desk. */
  readonly relayed: boolean
}

/** A concert's batch waiting for a desk message to another runner. */
interface Posted {
  readonly concertId: string
  readonly orders: ReadonlyArray<Order>
  readonly resume: (exit: Exit.Exit<ReadonlyArray<DeskOutcome>, PurchasesError>) => void
}

/**
 * The first answer an order gets is its buyer's: a later one (after a 503 for lateness) is
 * dropped. A buyer's callback runs inside whoever answers (the entity's reply, a sender): one
 * that throws must not keep the rest of the batch, or the concert's next batch, from theirs
 * (the API's own callback catches what it throws and answers 500).
 */
const answer = (w: Waiting, exit: Exit.Exit<Granted, NoTicket | PurchasesError>) => {
  if (w.answered) return
  w.answered = true
  try {
    w.done(exit)
  } catch {
    // The callback's failure is its own: see above.
  }
}

/** The batch's span: a trace of its own, linked to each request it carries. */
const batchSpan = (concertId: string, batch: ReadonlyArray<Waiting>, attempt: number) =>
  withSpan("ConcertSales.batch", {
    root: true,
    captureStackTrace: false,
    attributes: { concertId, orders: batch.length, attempt },
    links: batch.flatMap((w): Array<Tracer.SpanLink> =>
      w.span === undefined ? [] : [{ _tag: "SpanLink", span: w.span, attributes: {} }]
    )
  })

export class ConcertSales extends Effect.Service<ConcertSales>()("ConcertSales", {
  dependencies: [LocalConcerts.Default, Ownership.Default, DeskRoutes.Default],
  scoped: Effect.gen(function*() {
    const client = yield* ConcertEntity.client
    const deskClient = yield* SalesDesk.client
    const routes = yield* DeskRoutes
    const maxBatch = yield* positiveInteger("PURCHASE_BATCH_MAX", 1000)
    const locals = yield* LocalConcerts
    const ownership = yield* Ownership
    // An entity that gets only local orders looks idle to the cluster, which stops idle
    // entities after CONCERT_MAX_IDLE: a batch goes through the cluster at least this often,
    // leaving room for a batch through the door to finish (its orders' deadline). With an idle
    // time no longer than that deadline, every batch goes through the cluster.
    const maxIdle = yield* Config.duration("CONCERT_MAX_IDLE").pipe(Config.withDefault(Duration.minutes(5)))
    const purchaseTimeout = yield* purchaseTimeoutMillis
    const clock = yield* Effect.clock
    // With tracing off (no exporter), batches through a door or to a desk are sent without a
    // fiber (`pump`): no span to make or link, and nothing a fiber would add.
    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
    const viaClusterEvery = Math.min((Duration.toMillis(maxIdle) - purchaseTimeout) / 2, 60_000)
    /** When each concert last had a batch sent through the cluster. */
    const viaCluster = new Map<string, number>()
    /**
     * The buyers waiting per line (a concert's, or its orders from desks); a line is here while
     * a sender (`pump` or `send`) serves it.
     */
    const waiting = new Map<string, Array<Waiting>>()
    /** The batch each line has in flight now. */
    const sending = new Map<string, ReadonlyArray<Waiting>>()
    /** The concerts whose own line has its batch in flight to another runner's desk. */
    const atDesk = new Set<string>()
    /** Set at shutdown: nothing more is sent, and whoever comes is answered at once. */
    let closed = false
    // Runs after the sender fibers are interrupted: nobody is left waiting at shutdown, and a
    // batch answered after it (through a door) sends nothing more.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const queue of [...waiting.values(), ...sending.values()]) {
          for (const w of queue) answer(w, Exit.interrupt(FiberId.none))
        }
        for (const queue of waiting.values()) queue.length = 0
        waiting.clear()
      })
    )
    /** The line's queue is served no more: unless a newer queue has taken its place. */
    const done = (line: string, queue: Array<Waiting>) => {
      if (waiting.get(line) === queue) waiting.delete(line)
    }
    const runFork = yield* FiberSet.makeRuntime<never>()
    // Finalizers run last added first: the flag is set before the sender fibers' set closes (a
    // batch handed to `send` while it closes would never run) and before the one that answers.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
      })
    )

    // The entity answers every order by its deadline; this covers a message that never reached
    // it (held by the cluster while it has no shard locks). One look every quarter second for
    // the whole process, rather than a timer per buyer: an order still unanswered a grace
    // after its deadline is answered 503 (the entity will refuse it unwritten if it comes).
    yield* Effect.forkScoped(Effect.repeat(
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const overdue = (w: Waiting) => w.order.deadline !== undefined && w.order.deadline + answerGrace <= now
          for (const queue of [...waiting.values(), ...sending.values()]) {
            for (const w of queue) if (overdue(w)) answer(w, Exit.fail(notInTime))
          }
          for (const [concertId, at] of viaCluster) if (at <= now - viaClusterEvery) viaCluster.delete(concertId)
        })),
      Schedule.spaced("250 millis")
    ))

    const settle = (batch: ReadonlyArray<Waiting>, exit: Exit.Exit<ReadonlyArray<DeskOutcome>, PurchasesError>) => {
      batch.forEach((w, i) => {
        if (Exit.isFailure(exit)) return answer(w, Exit.failCause(exit.cause))
        const outcome = exit.value[i]
        answer(
          w,
          outcome instanceof TicketRecord || outcome instanceof ReservationRecord || outcome instanceof RegistrationRecord
            ? Exit.succeed(outcome)
            : outcome === undefined
            ? Exit.die(new Error("the concert answered fewer orders than it was sent"))
            : Exit.fail(outcome)
        )
      })
    }

    /** The orders still in time; the others are answered 503 without being sent. */
    const expire = (batch: Array<Waiting>, now: number) => {
      if (batch.every((w) => w.order.deadline === undefined || w.order.deadline > now)) return batch
      return batch.filter((w) => {
        if (w.order.deadline === undefined || w.order.deadline > now) return true
        answer(w, Exit.fail(notInTime))
        return false
      })
    }

    /**
     * The concert's door, when a batch may go through it: the entity runs in this process,
     * which holds its shard, and it had a batch through the cluster lately. Otherwise batches
     * go through the cluster (which starts the entity, wherever it belongs).
     */
    const doorOf = (concertId: string, now: number) => {
      const door = locals.door(concertId)
      if (door === undefined || viaClusterEvery <= 0) return undefined
      if ((viaCluster.get(concertId) ?? 0) <= now - viaClusterEvery || !ownership.owns(concertId)) return undefined
      return door
    }

    /** Whether the line's next batch carries an order from a desk. */
    const relayedAhead = (queue: ReadonlyArray<Waiting>) => {
      for (let i = 0; i < queue.length && i < maxBatch; i++) if (queue[i]!.relayed) return true
      return false
    }

    /** The desks with a message in flight, each with the batches that go in its next one. */
    const posts = new Map<string, Array<Posted>>()

    /**
     * Sends what waits for `desk`, message after message, until nothing waits: every concert's
     * batch in one message. A message lost on the way is each batch's own loss (its concert's
     * sender sends it again, concert by concert).
     */
    const sendToDesk = (desk: string, queue: Array<Posted>): Effect.Effect<void> =>
      Effect.gen(function*() {
        for (;;) {
          const posted = queue.splice(0)
          if (posted.length === 0) {
            if (posts.get(desk) === queue) posts.delete(desk)
            return
          }
          const concerts = posted.map((p) => ({ concertId: p.concertId, orders: p.orders as [Order, ...Array<Order>] }))
          const message = deskClient(desk).Orders({ concerts: concerts as [typeof concerts[0], ...typeof concerts] })
          // The desk answers by its orders' earliest deadline (and a little); one that does not
          // answer at all (a runner without desks, one that vanished) is lost by the sweeper's
          // time, and its batches go again through the cluster rather than hold their lines.
          const deadline = earliestDeadline(posted.flatMap((p) => p.orders))
          const exit = yield* Effect.exit(
            deadline === undefined ? message : Effect.timeoutFailCause(message, {
              duration: Duration.millis(Math.max(0, deadline + answerGrace - (yield* Clock.currentTimeMillis))),
              onTimeout: () => Cause.interrupt(FiberId.none)
            })
          )
          posted.forEach((p, i) => {
            const outcomes = Exit.isSuccess(exit) ? exit.value[i] : undefined
            const answer = Exit.isFailure(exit)
              ? Exit.failCause(exit.cause)
              : outcomes === undefined
              ? Exit.die(new Error("the desk answered fewer concerts than it was sent"))
              // None: the desk did not learn this concert's outcome in time; sent again.
              : outcomes.length === 0
              ? Exit.interrupt(FiberId.none)
              : Exit.succeed(outcomes.map((answer, j) => fromDesk(p.concertId, p.orders[j]!, answer)))
            // A batch's answer runs its line's next step here (`pump`, without a fiber): one
            // that throws must not keep the other batches from theirs, nor stop this desk's
            // sender, which every later batch for the desk waits on.
            try {
              p.resume(answer)
            } catch {
              // The line's own failure: see above.
            }
          })
        }
      })

    /** A concert's batch through another runner's desk, with whatever else goes there. */
    const viaDesk = (desk: string, concertId: string, orders: ReadonlyArray<Order>) =>
      Effect.async<ReadonlyArray<DeskOutcome>, PurchasesError>((resume) => post(desk, { concertId, orders, resume }))

    /** A batch joins its desk's next message; the first to find none starts the desk's sender. */
    const post = (desk: string, entry: Posted) => {
      const queue = posts.get(desk)
      if (queue !== undefined) return void queue.push(entry)
      const fresh = [entry]
      posts.set(desk, fresh)
      runFork(sendToDesk(desk, fresh))
    }

    /**
     * One batch to the concert's entity: through its door when it may, through the desk of the
     * runner that owns it when another does, else through the cluster.
     */
    const deliver = (
      concertId: string,
      line: string,
      batch: ReadonlyArray<Waiting>,
      now: number,
      attempt: number
    ): Effect.Effect<ReadonlyArray<DeskOutcome>, PurchasesError> => {
      const orders = batch.map((w) => w.order)
      const door = doorOf(concertId, now)
      const viaTheCluster = Effect.suspend(() => {
        viaCluster.set(concertId, now)
        return client(concertId).Purchases({ orders: orders as [Order, ...Array<Order>] })
      })
      if (door === undefined) {
        // A batch sent again after a loss goes through the cluster, which knows where its
        // concert runs now; so does one with orders that came from a desk (never from desk to
        // desk).
        const desk = attempt > 1 || line !== concertId || batch.some((w) => w.relayed)
          ? undefined
          : routes.deskOf(concertId)
        if (desk === undefined) return viaTheCluster
        return Effect.suspend(() => {
          atDesk.add(line)
          return viaDesk(desk, concertId, orders)
        }).pipe(Effect.ensuring(Effect.sync(() => atDesk.delete(line))))
      }
      return Effect.flatMap(currentSpan, (span) =>
        Effect.async<ReadonlyArray<PurchaseOutcome>, PurchasesError>((resume) => {
          const handed = door({
            _tag: "LocalOrders",
            orders,
            span: Option.getOrUndefined(span),
            done: (exit) => resume(exit)
          })
          if (!handed) resume(viaTheCluster)
        }))
    }

    /** Whether a batch's failure left its outcome unknown, so that it is sent again. */
    const resend = (batch: ReadonlyArray<Waiting>, exit: Exit.Exit<unknown, unknown>) =>
      Exit.isFailure(exit) && lost(exit.cause) && batch.some((w) => w.order.deadline !== undefined)

    /** After a lost batch: logged, and a pause growing with the attempts before it goes again. */
    const backOff = (concertId: string, batch: ReadonlyArray<Waiting>, attempt: number) => {
      // Sent again through the cluster, which knows where the concert runs now.
      viaCluster.delete(concertId)
      return Effect.zipRight(
        Effect.logWarning("a purchase message was lost; sending it again").pipe(
          Effect.annotateLogs({ concertId, batch: batch.length, attempt })
        ),
        Effect.sleep(Duration.millis(Math.min(100 * attempt, 1000)))
      )
    }

    /**
     * Sends what waits for `concertId`, batch after batch, until nobody waits, starting with
     * `lostBatch` when a batch was lost before. Orders past their deadline are answered here,
     * unsent. When the message itself is lost (the concert's shard moving to another runner, a
     * runner stopping) the outcome is unknown, so the same orders, with the same ticket ids, go
     * again until their deadline: the journal's unique keys turn a repeat of a written order
     * into that order's ticket, never a second one.
     */
    const send = (
      concertId: string,
      line: string,
      queue: Array<Waiting>,
      lostBatch?: { readonly batch: Array<Waiting>; readonly attempt: number }
    ): Effect.Effect<void> =>
      // A loop, not a call to itself after each batch: that kept every batch sent (its buyers,
      // their orders) on the fiber's stack for as long as the concert sold without a pause.
      Effect.gen(function*() {
        for (;;) {
          let batch = lostBatch?.batch ?? queue.splice(0, maxBatch)
          let attempt = 1
          if (lostBatch !== undefined) {
            // In `sending` while it waits to go again: the sweeper and the shutdown see it.
            sending.set(line, batch)
            yield* backOff(concertId, batch, lostBatch.attempt)
            attempt = lostBatch.attempt + 1
            lostBatch = undefined
          }
          if (batch.length === 0) return done(line, queue)
          for (;; attempt++) {
            const now = yield* Clock.currentTimeMillis
            batch = expire(batch, now)
            if (batch.length === 0) break
            sending.set(line, batch)
            const exit = yield* Effect.exit(deliver(concertId, line, batch, now, attempt).pipe(batchSpan(concertId, batch, attempt)))
            if (!resend(batch, exit)) {
              sending.delete(line)
              settle(batch, exit)
              break
            }
            yield* backOff(concertId, batch, attempt)
          }
          sending.delete(line)
        }
      })

    /**
     * `send` without a fiber, for a concert whose entity takes batches through its door, or
     * whose runner's desk takes them (and with tracing off): each batch goes when the one
     * before is answered, from that answer. Whatever else comes (neither, a door that refuses,
     * a lost batch) is handed to `send`, which carries on until nobody waits.
     */
    const pump = (concertId: string, line: string, queue: Array<Waiting>): void => {
      for (;;) {
        if (closed) {
          for (const w of queue.splice(0)) answer(w, Exit.interrupt(FiberId.none))
          return done(line, queue)
        }
        const now = clock.unsafeCurrentTimeMillis()
        // The entity's door, or another runner's desk (never for orders from a desk).
        const via = doorOf(concertId, now) ??
          (line === concertId && !relayedAhead(queue) ? routes.deskOf(concertId) : undefined)
        if (via === undefined) return void runFork(send(concertId, line, queue))
        const batch = expire(queue.splice(0, maxBatch), now)
        if (batch.length === 0) {
          if (queue.length > 0) continue
          return done(line, queue)
        }
        sending.set(line, batch)
        // What the batch's answer does, through a door or a desk: the next batch goes from here.
        const answered = (exit: Exit.Exit<ReadonlyArray<DeskOutcome>, PurchasesError>) => {
          atDesk.delete(line)
          // Handed on in flight (`send` keeps it there): seen by the sweeper and the shutdown.
          if (resend(batch, exit) && !closed) return void runFork(send(concertId, line, queue, { batch, attempt: 1 }))
          sending.delete(line)
          settle(batch, exit)
          pump(concertId, line, queue)
        }
        if (typeof via === "string") {
          atDesk.add(line)
          return post(via, { concertId, orders: batch.map((w) => w.order), resume: answered })
        }
        const handed = via({
          _tag: "LocalOrders",
          orders: batch.map((w) => w.order),
          span: undefined,
          done: answered
        })
        if (handed) return
        // The entity is stopping: this batch, and the rest, through the cluster.
        sending.delete(line)
        queue.unshift(...batch)
        return void runFork(send(concertId, line, queue))
      }
    }

    /** The order joins its concert's line; the first to find none starts its sender. */
    const enqueue = (concertId: string, entry: Waiting): void => {
      if (closed) return answer(entry, Exit.interrupt(FiberId.none))
      const queue = waiting.get(concertId)
      if (queue !== undefined) return void queue.push(entry)
      start(concertId, concertId, [entry])
    }

    /**
     * A desk message's orders for one concert join a line together: one by one, the first would
     * find the line idle and go alone, and the rest would wait a whole batch (a journal write)
     * behind it.
     *
     * Where the concert's entity takes batches through its door here, they join the line of
     * this runner's own buyers, so that the concert gets one batch at a time, which its entity
     * decides without a fiber (two lines would meet there, and one wait in its inbox). Not while
     * that line's batch is at another runner's desk: the orders would wait behind a batch that
     * may wait for their own desk's answer (a desk that moved to this runner). Then, and where
     * the concert runs elsewhere, they have a line of their own.
     */
    const enqueueRelayed = (concertId: string, entries: Array<Waiting>): void => {
      if (closed) return entries.forEach((entry) => answer(entry, Exit.interrupt(FiberId.none)))
      if (!atDesk.has(concertId) && doorOf(concertId, clock.unsafeCurrentTimeMillis()) !== undefined) {
        const own = waiting.get(concertId)
        if (own === undefined) return start(concertId, concertId, entries)
        for (const entry of entries) own.push(entry)
        return
      }
      const line = `${concertId} relayed`
      const queue = waiting.get(line)
      if (queue === undefined) return start(concertId, line, entries)
      for (const entry of entries) queue.push(entry)
    }

    /** A line that had nobody waiting: its sender starts with `fresh`. */
    const start = (concertId: string, line: string, fresh: Array<Waiting>): void => {
      waiting.set(line, fresh)
      if (tracing) runFork(send(concertId, line, fresh))
      else pump(concertId, line, fresh)
    }

    const submit = (concertId: string, order: Order): Effect.Effect<Granted, NoTicket | PurchasesError> =>
      Effect.withFiberRuntime((fiber) =>
        Effect.async<Granted, NoTicket | PurchasesError>((resume) => {
          let gone = false
          enqueue(concertId, {
            order,
            done: (exit) => gone || resume(exit),
            answered: false,
            span: spanOf(fiber),
            relayed: false
          })
          // A buyer who went away is not waited for; the order stands (as a request sent does).
          return Effect.sync(() => {
            gone = true
          })
        })
      )

    return {
      /**
       * `buy` without a fiber, for the API's busiest path: `done` is told the outcome once, from
       * whichever fiber answers it (with tracing off: the batch has no span to link to).
       */
      unsafeBuy: (
        concertId: string,
        order: PurchaseOrder,
        done: Answer<TicketRecord, BuyRefusal>
      ): void =>
        enqueue(concertId, {
          order,
          done: done as Answer<Granted, NoTicket | PurchasesError>,
          answered: false,
          span: undefined,
          relayed: false
        }),
      /**
       * One concert's orders from another process's desk, sold here or passed on through the
       * cluster: `done` is told each order's outcome by its index.
       */
      relay: (
        concertId: string,
        orders: ReadonlyArray<Order>,
        done: (index: number, exit: Exit.Exit<Granted, NoTicket | PurchasesError>) => void
      ): void =>
        enqueueRelayed(
          concertId,
          orders.map((order, index) => ({
            order,
            done: (exit) => done(index, exit),
            answered: false,
            span: undefined,
            relayed: true
          }))
        ),
      /** One seat, sold at once. */
      buy: (concertId: string, order: PurchaseOrder) =>
        submit(concertId, order) as Effect.Effect<TicketRecord, BuyRefusal>,
      /** `quantity` seats held as a new reservation, all or nothing. */
      hold: (concertId: string, order: HoldOrder) =>
        submit(concertId, order) as Effect.Effect<
          ReservationRecord,
          Exclude<NoTicket, SoldOut | AlreadyRegistered | NotInLine> | PurchasesError
        >,
      /** A registration for the draw, or a place in the waiting line. */
      register: (concertId: string, order: RegisterOrder) =>
        submit(concertId, order) as Effect.Effect<
          RegistrationRecord,
          Exclude<NoTicket, SoldOut | NotEnoughSeats | SaleNotOpen | ByDraw | IdempotencyKeyReused> | PurchasesError
        >
    } as const
  })
}) {}
