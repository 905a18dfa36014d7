/**
 * The concert entity: the single writer of one concert's seats. Its loop drains the mailbox,
 * plans every waiting purchase against the ledger it holds (`ConcertState`) with the pure
 * rules (`SeatLedger.plan`, then `PurchaseBatch`), journals the winners in one statement
 * (group commit) and only then replies. Updates run in their arrival order between purchase
 * batches.
 */
import { Entity, type Envelope } from "@effect/cluster"
import { Chunk, Clock, Config, Duration, Effect, Layer, type Mailbox, Option } from "effect"
import {
  ConcertEntity,
  JournalUnavailable,
  type PurchaseOrder,
  type PurchaseOutcome,
  type Purchases,
  type Update
} from "../domain/ConcertEntity.js"
import { ConcertNotFound } from "../domain/Errors.js"
import { ConcertId } from "../domain/Ids.js"
import { TicketRecord } from "../domain/Ticket.js"
import { ConcertJournal, type JournalError } from "../sql/ConcertJournal.js"
import { ConcertState } from "./ConcertState.js"
import { journalRows, outcomesOf } from "./PurchaseBatch.js"
import * as SeatLedger from "./SeatLedger.js"
import { positiveInteger } from "../Settings.js"

type Rpcs = typeof Purchases | typeof Update
type PurchasesRequest = Envelope.Request<typeof Purchases>
type UpdateRequest = Envelope.Request<typeof Update>

/** How often a batch that hit a constraint is retried, one order at a time, after a reload. */
const maxConflictAttempts = 3

const make = Effect.gen(function*() {
  const journal = yield* ConcertJournal
  const address = yield* Entity.CurrentAddress
  const concertId = ConcertId.make(address.entityId)

  return (mailbox: Mailbox.ReadonlyMailbox<Envelope.Request<Rpcs>>, replier: Entity.Replier<Rpcs>) => {
    const state = new ConcertState(concertId, journal)

    /** A sell-out, a cancellation, a concert back on sale: one line each, once journaled. */
    const statusChange = (before: SeatLedger.Ledger, after: SeatLedger.Ledger) =>
      before.concert.status === after.concert.status
        ? Effect.void
        : Effect.logInfo(
          after.concert.status === "SOLD_OUT"
            ? "concert sold out"
            : after.concert.status === "CANCELLED"
            ? "concert cancelled"
            : "concert on sale"
        ).pipe(
          Effect.annotateLogs({
            concertId,
            name: after.concert.name,
            sold: after.sold,
            capacity: after.concert.capacity,
            was: before.concert.status
          })
        )

    const unavailable = (error: JournalError) =>
      new JournalUnavailable({ reason: error.kind === "Conflict" ? "conflicting write" : "database unavailable" })

    /** Plans every order against the ledger, journals the winners in one statement, then answers. */
    const decide = (
      orders: ReadonlyArray<PurchaseOrder>,
      attempt: number
    ): Effect.Effect<ReadonlyArray<PurchaseOutcome>, ConcertNotFound> =>
      Effect.gen(function*() {
        const loaded = yield* state.current
        if (Option.isNone(loaded)) return yield* ConcertNotFound.of(concertId)

        const keys = orders.flatMap((order) => order.idempotencyKey ?? [])
        const existing = new Map<string, TicketRecord>()
        if (keys.length > 0) {
          for (const { idempotencyKey, ...ticket } of yield* journal.findByKeys(keys)) {
            existing.set(idempotencyKey, new TicketRecord(ticket))
          }
        }

        const plan = SeatLedger.plan(loaded.value, orders, existing)
        if (plan.allocated > 0) {
          yield* journal.append(plan.ledger, journalRows(orders, plan))
          state.adopt(plan.ledger)
          yield* statusChange(loaded.value, plan.ledger)
        }
        return outcomesOf(concertId, orders, plan)
      }).pipe(
        Effect.catchTag("JournalError", (error) => {
          state.forget()
          if (error.kind === "Conflict" && attempt < maxConflictAttempts) {
            // Someone else's write (a retried ticket id, a key used at another concert, or a
            // runner that also believed it owned this concert): decide each order alone.
            return Effect.logWarning("journal conflict; deciding the batch one order at a time").pipe(
              Effect.annotateLogs({ concertId, batch: orders.length, attempt }),
              Effect.zipRight(Effect.forEach(orders, (order) => decideAlone(order, attempt)))
            )
          }
          return Effect.logError("journal write failed").pipe(
            Effect.annotateLogs({ concertId, batch: orders.length, cause: String(error.cause) }),
            Effect.as(orders.map(() => unavailable(error)))
          )
        })
      )

    /** A retried order whose ticket is already journaled gets that ticket back. */
    const decideAlone = (order: PurchaseOrder, attempt: number): Effect.Effect<PurchaseOutcome, ConcertNotFound> =>
      journal.findTicket(order.ticketId).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.map(decide([order], attempt + 1), (outcomes) => outcomes[0]!),
          onSome: Effect.succeed
        })),
        Effect.catchTag("JournalError", (error) => Effect.succeed(unavailable(error)))
      )

    /**
     * Orders past their deadline are refused unwritten; the rest are decided within the
     * earliest deadline among them. A decision cut off there is interrupted, and with it the
     * journal statement (cancelled in the database, or never sent if it waited for a
     * connection): the buyers are answered 503 and the ledger is reloaded before the next batch.
     */
    const decideInTime = (orders: ReadonlyArray<PurchaseOrder>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const live: Array<PurchaseOrder> = []
        let earliest = Infinity
        for (const order of orders) {
          if (order.deadline === undefined || order.deadline > now) {
            live.push(order)
            if (order.deadline !== undefined && order.deadline < earliest) earliest = order.deadline
          }
        }
        const late = new JournalUnavailable({ reason: "the purchase could not be saved in time" })
        const decided = live.length === 0
          ? Effect.succeed<ReadonlyArray<PurchaseOutcome>>([])
          : earliest === Infinity
          ? decide(live, 1)
          : decide(live, 1).pipe(
            Effect.timeoutOption(Duration.millis(earliest - now)),
            Effect.flatMap(Option.match({
              onSome: Effect.succeed,
              onNone: () => {
                state.forget()
                return Effect.as(
                  Effect.logWarning("journal write cut off at the buyers' deadline").pipe(
                    Effect.annotateLogs({ concertId, batch: live.length })
                  ),
                  live.map(() => late)
                )
              }
            }))
          )
        if (live.length === orders.length) return decided
        return Effect.map(decided, (outcomes) => {
          let next = 0
          return orders.map((order) => order.deadline === undefined || order.deadline > now ? outcomes[next++]! : late)
        })
      })

    /** Every order of consecutive `Purchases` messages is decided as one batch. */
    const purchases = (requests: ReadonlyArray<PurchasesRequest>) => {
      const orders = requests.flatMap((request) => request.payload.orders)
      return decideInTime(orders).pipe(
        Effect.withSpan("ConcertEntity.purchases", {
          captureStackTrace: false,
          attributes: { concertId, messages: requests.length, batch: orders.length }
        }),
        Effect.matchEffect({
          onFailure: (error) => Effect.forEach(requests, (request) => replier.fail(request, error), { discard: true }),
          onSuccess: (outcomes) => {
            let offset = 0
            return Effect.forEach(requests, (request) => {
              const count = request.payload.orders.length
              offset += count
              return replier.succeed(request, outcomes.slice(offset - count, offset))
            }, { discard: true })
          }
        })
      )
    }

    const update = (request: UpdateRequest) =>
      Effect.gen(function*() {
        const loaded = yield* state.current
        if (Option.isNone(loaded)) return yield* replier.fail(request, ConcertNotFound.of(concertId))
        const next = SeatLedger.applyUpdate(loaded.value, request.payload)
        yield* journal.update(next)
        state.adopt(next)
        yield* statusChange(loaded.value, next)
        yield* replier.succeed(request, next.concert)
      }).pipe(
        Effect.catchTag("JournalError", (error) => {
          state.forget()
          return replier.fail(request, unavailable(error))
        }),
        Effect.withSpan("ConcertEntity.update", { captureStackTrace: false, attributes: { concertId } })
      )

    /** Consecutive purchase messages form one batch; an update is applied where it arrived. */
    const handle = Effect.fnUntraced(function*(requests: ReadonlyArray<Envelope.Request<Rpcs>>) {
      let start = 0
      while (start < requests.length) {
        if (requests[start]!.tag === "Update") {
          yield* update(requests[start] as UpdateRequest)
          start += 1
          continue
        }
        let end = start
        while (end < requests.length && requests[end]!.tag === "Purchases") end += 1
        yield* purchases(requests.slice(start, end) as Array<PurchasesRequest>)
        start = end
      }
    })

    return mailbox.takeAll.pipe(
      Effect.flatMap(([messages]) => handle(Chunk.toReadonlyArray(messages))),
      Effect.forever
    )
  }
})

export const ConcertEntityLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    // Each process has one message per concert in flight, but other clients and runners may
    // queue many: they must wait, not overflow. Beyond this, callers get 503 + Retry-After.
    const mailboxCapacity = yield* positiveInteger("CONCERT_MAILBOX_CAPACITY", 50_000)
    const maxIdleTime = yield* Config.duration("CONCERT_MAX_IDLE").pipe(Config.withDefault("5 minutes"))
    return ConcertEntity.toLayerMailbox(make, { mailboxCapacity, maxIdleTime })
  })
).pipe(Layer.provide(ConcertJournal.Default))
