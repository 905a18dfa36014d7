/**
 * The buying side of the concert entities, one per process. Buyers of one concert who arrive
 * while that concert's previous message is in flight wait together and go as the next
 * `Purchases` message: one message per concert in flight per process, however many buyers.
 * Under a burst that is what keeps the cluster's per-message cost (envelope, mailbox, reply,
 * fibers) off the per-buyer path; the entity then journals all of a batch in one statement.
 */
import { Deferred, Effect, Exit, FiberId, FiberSet } from "effect"
import { ConcertEntity, type PurchaseOrder, type PurchaseOutcome } from "../domain/ConcertEntity.js"
import { TicketRecord } from "../domain/Ticket.js"
import { positiveInteger } from "../Settings.js"

type Client = Effect.Effect.Success<typeof ConcertEntity.client>
type PurchasesError = Effect.Effect.Error<ReturnType<ReturnType<Client>["Purchases"]>>
type Refusal = Exclude<PurchaseOutcome, TicketRecord>

interface Waiting {
  readonly order: PurchaseOrder
  readonly deferred: Deferred.Deferred<TicketRecord, Refusal | PurchasesError>
}

export class ConcertSales extends Effect.Service<ConcertSales>()("ConcertSales", {
  scoped: Effect.gen(function*() {
    const client = yield* ConcertEntity.client
    const maxBatch = yield* positiveInteger("PURCHASE_BATCH_MAX", 1000)
    /** The buyers waiting per concert; a concert is here while its sender fiber runs. */
    const waiting = new Map<string, Array<Waiting>>()
    // Runs after the senders are interrupted: nobody is left waiting at shutdown.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const queue of waiting.values()) {
          for (const { deferred } of queue) Deferred.unsafeDone(deferred, Exit.interrupt(FiberId.none))
        }
        waiting.clear()
      })
    )
    const runFork = yield* FiberSet.makeRuntime<never>()

    const settle = (batch: ReadonlyArray<Waiting>, exit: Exit.Exit<ReadonlyArray<PurchaseOutcome>, PurchasesError>) => {
      batch.forEach(({ deferred }, i) => {
        if (Exit.isFailure(exit)) return Deferred.unsafeDone(deferred, Exit.failCause(exit.cause))
        const outcome = exit.value[i]
        Deferred.unsafeDone(
          deferred,
          outcome instanceof TicketRecord
            ? Exit.succeed(outcome)
            : outcome === undefined
            ? Exit.die(new Error("the concert answered fewer orders than it was sent"))
            : Exit.fail(outcome)
        )
      })
    }

    /** Sends what waits for `concertId`, batch after batch, until nobody waits. */
    const send = (concertId: string, queue: Array<Waiting>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const batch = queue.splice(0, maxBatch)
        if (batch.length === 0) {
          waiting.delete(concertId)
          return Effect.void
        }
        const [first, ...rest] = batch.map((w) => w.order)
        return client(concertId).Purchases({ orders: [first!, ...rest] }).pipe(
          Effect.onExit((exit) => Effect.sync(() => settle(batch, exit))),
          Effect.exit,
          Effect.zipRight(send(concertId, queue))
        )
      })

    const buy = (concertId: string, order: PurchaseOrder): Effect.Effect<TicketRecord, Refusal | PurchasesError> =>
      Effect.suspend(() => {
        const deferred = Deferred.unsafeMake<TicketRecord, Refusal | PurchasesError>(FiberId.none)
        const queue = waiting.get(concertId)
        if (queue === undefined) {
          const fresh = [{ order, deferred }]
          waiting.set(concertId, fresh)
          runFork(send(concertId, fresh))
        } else {
          queue.push({ order, deferred })
        }
        return Deferred.await(deferred)
      })

    return { buy } as const
  })
}) {}
