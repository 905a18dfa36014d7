/**
 * The concert entity: the single writer of one concert's seats. Its loop drains the mailbox,
 * plans every waiting purchase against the in-memory ledger, journals the winners in one
 * statement (group commit) and only then replies. Updates run in their arrival order between
 * purchase batches.
 */
import { Entity, type Envelope } from "@effect/cluster"
import { Chunk, Config, Effect, Exit, Layer, type Mailbox, Option } from "effect"
import {
  ConcertCancelled,
  ConcertEntity,
  ConcertNotFound,
  IdempotencyKeyReused,
  JournalUnavailable,
  type Purchase,
  SoldOut,
  type Update
} from "../domain/ConcertEntity.js"
import { ConcertId, TicketId } from "../domain/Ids.js"
import { TicketRecord } from "../domain/Ticket.js"
import { ConcertJournal, type JournalError } from "../sql/ConcertJournal.js"
import * as SeatLedger from "./SeatLedger.js"

type Rpcs = typeof Purchase | typeof Update
type PurchaseRequest = Envelope.Request<typeof Purchase>
type UpdateRequest = Envelope.Request<typeof Update>
type PurchaseExit = Exit.Exit<TicketRecord, SoldOut | ConcertCancelled | IdempotencyKeyReused>

/** How often a batch that hit a constraint is retried, one request at a time, after a reload. */
const maxConflictAttempts = 3

const make = Effect.gen(function*() {
  const journal = yield* ConcertJournal
  const address = yield* Entity.CurrentAddress
  const concertId = ConcertId.make(address.entityId)

  return (mailbox: Mailbox.ReadonlyMailbox<Envelope.Request<Rpcs>>, replier: Entity.Replier<Rpcs>) => {
    /** Loaded lazily and dropped after any failed write, so the next batch starts from the journal. */
    let ledger: Option.Option<SeatLedger.Ledger> | undefined

    const current = Effect.suspend(() =>
      ledger !== undefined && Option.isSome(ledger)
        ? Effect.succeed(ledger)
        : Effect.tap(journal.load(concertId), (loaded) => {
          ledger = loaded
        })
    )

    const unavailable = (error: JournalError) =>
      new JournalUnavailable({ reason: error.kind === "Conflict" ? "conflicting write" : "database unavailable" })

    const failAll = (requests: ReadonlyArray<PurchaseRequest>, error: ConcertNotFound | JournalUnavailable) =>
      Effect.forEach(requests, (request) => replier.fail(request, error), { discard: true })

    /** The answer to each request of a journaled plan, in order (a repeat answers as its first). */
    const exitsOf = (requests: ReadonlyArray<PurchaseRequest>, plan: SeatLedger.Plan<TicketRecord>) => {
      const exits: Array<PurchaseExit> = []
      plan.outcomes.forEach((outcome, i) => {
        const { idempotencyKey = "", ticketId, userId } = requests[i]!.payload
        switch (outcome._tag) {
          case "Allocated":
            // Fields already decoded at the RPC boundary: no second validation on the hot path.
            exits.push(Exit.succeed(
              new TicketRecord(
                { id: ticketId, concertId, userId, seat: outcome.seat, printStatus: "NOT_PRINTED" },
                { disableValidation: true }
              )
            ))
            break
          case "Existing":
            exits.push(Exit.succeed(outcome.ticket))
            break
          case "KeyReused":
            exits.push(Exit.fail(new IdempotencyKeyReused({ idempotencyKey })))
            break
          case "Refused":
            exits.push(Exit.fail(
              outcome.reason === "Cancelled" ? new ConcertCancelled({ concertId }) : new SoldOut({ concertId })
            ))
            break
          case "SameAs":
            exits.push(exits[outcome.index]!)
        }
      })
      return exits
    }

    const purchases = (requests: ReadonlyArray<PurchaseRequest>, attempt: number): Effect.Effect<void> =>
      Effect.gen(function*() {
        const loaded = yield* current
        if (Option.isNone(loaded)) return yield* failAll(requests, new ConcertNotFound({ concertId }))

        const keys = requests.flatMap((r) => r.payload.idempotencyKey ?? [])
        const existing = new Map<string, TicketRecord>()
        if (keys.length > 0) {
          for (const { idempotencyKey, ...ticket } of yield* journal.findByKeys(keys)) {
            existing.set(idempotencyKey, new TicketRecord(ticket))
          }
        }

        const plan = SeatLedger.plan(loaded.value, requests.map((r) => r.payload), existing)
        if (plan.allocated > 0) {
          yield* journal.append(
            plan.ledger,
            plan.outcomes.flatMap((outcome, i) => {
              if (outcome._tag !== "Allocated") return []
              const { idempotencyKey, ticketId, userId } = requests[i]!.payload
              return [{ id: ticketId, seat: outcome.seat, userId, idempotencyKey }]
            })
          )
          ledger = Option.some(plan.ledger)
        }
        const exits = exitsOf(requests, plan)
        yield* Effect.forEach(requests, (request, i) => replier.complete(request, exits[i]!), { discard: true })
      }).pipe(
        Effect.catchTag("JournalError", (error) => {
          ledger = undefined
          if (error.kind === "Conflict" && attempt < maxConflictAttempts) {
            // Someone else's write (a retried ticket id, a key used at another concert, or a
            // runner that also believed it owned this concert): decide each request alone.
            return Effect.logWarning("journal conflict; deciding the batch one request at a time").pipe(
              Effect.annotateLogs({ concertId, batch: requests.length, attempt }),
              Effect.zipRight(Effect.forEach(requests, (r) => retryAlone(r, attempt), { discard: true }))
            )
          }
          return Effect.logError("journal write failed").pipe(
            Effect.annotateLogs({ concertId, batch: requests.length, cause: String(error.cause) }),
            Effect.zipRight(failAll(requests, unavailable(error)))
          )
        })
      )

    /** A retried message whose ticket is already journaled gets that ticket back. */
    const retryAlone = (request: PurchaseRequest, attempt: number) =>
      journal.findTicket(TicketId.make(request.payload.ticketId)).pipe(
        Effect.flatMap(Option.match({
          onNone: () => purchases([request], attempt + 1),
          onSome: (ticket) => replier.succeed(request, ticket)
        })),
        Effect.catchTag("JournalError", (error) => replier.fail(request, unavailable(error)))
      )

    const update = (request: UpdateRequest) =>
      Effect.gen(function*() {
        const loaded = yield* current
        if (Option.isNone(loaded)) return yield* replier.fail(request, new ConcertNotFound({ concertId }))
        const next = SeatLedger.applyUpdate(loaded.value, request.payload)
        yield* journal.update(next)
        ledger = Option.some(next)
        yield* replier.succeed(request, next.concert)
      }).pipe(
        Effect.catchTag("JournalError", (error) => {
          ledger = undefined
          return replier.fail(request, unavailable(error))
        }),
        Effect.withSpan("ConcertEntity.update", { captureStackTrace: false, attributes: { concertId } })
      )

    /** Consecutive purchases form one batch; an update is applied where it arrived. */
    const handle = Effect.fnUntraced(function*(requests: ReadonlyArray<Envelope.Request<Rpcs>>) {
      let start = 0
      while (start < requests.length) {
        if (requests[start]!.tag === "Update") {
          yield* update(requests[start] as UpdateRequest)
          start += 1
          continue
        }
        let end = start
        while (end < requests.length && requests[end]!.tag === "Purchase") end += 1
        const batch = requests.slice(start, end) as Array<PurchaseRequest>
        yield* purchases(batch, 1).pipe(
          Effect.withSpan("ConcertEntity.purchases", { captureStackTrace: false, attributes: { concertId, batch: batch.length } })
        )
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
    // A 10k burst on one concert must queue, not overflow: beyond this, callers get 503 + Retry-After.
    const mailboxCapacity = yield* Config.integer("CONCERT_MAILBOX_CAPACITY").pipe(Config.withDefault(50_000))
    const maxIdleTime = yield* Config.duration("CONCERT_MAX_IDLE").pipe(Config.withDefault("5 minutes"))
    return ConcertEntity.toLayerMailbox(make, { mailboxCapacity, maxIdleTime })
  })
).pipe(Layer.provide(ConcertJournal.Default))
