/**
 * A runner's sales desk: takes another process's orders for this runner's concerts, all
 * concerts in one message, and hands each to this process's `ConcertSales`, where it joins its
 * concert's next batch with the orders of this runner's own buyers. An order for a concert this
 * runner does not own (its shard moved, or the sender's ring was behind) is passed on through
 * the cluster.
 */
import { Cause, Effect, Exit, Option } from "effect"
import { type DeskAnswer, SalesDesk, toDesk } from "../domain/SalesDesk.js"
import * as Metrics from "../Metrics.js"
import { ConcertSales, earliestDeadline } from "./ConcertSales.js"
import { Ownership } from "./Ownership.js"

/**
 * How long after the message's earliest deadline the desk answers with what it knows: the
 * entity answers every order by its deadline, so by then only a concert held up elsewhere (a
 * slow database, a batch lost on its way to the entity) is still out, and it must not hold up
 * the others' answers past the sender's patience (a second after the deadline).
 */
const deskGrace = 250

export const SalesDeskLive = SalesDesk.toLayer(
  Effect.gen(function*() {
    const sales = yield* ConcertSales
    const ownership = yield* Ownership
    return {
      Orders: ({ payload }) =>
        Effect.async<ReadonlyArray<ReadonlyArray<DeskAnswer>>>((resume) => {
          const outcomes = payload.concerts.map(({ orders }) => new Array<DeskAnswer>(orders.length))
          /** Per concert: its orders still unanswered, or -1 once one of them ended unknown. */
          const left = payload.concerts.map(({ orders }) => orders.length)
          let pending = left.reduce((n, count) => n + count, 0)
          Metrics.deskOrders.unsafeUpdate(pending, [])
          Metrics.deskMessages.unsafeUpdate(1, [])
          for (const { concertId, orders } of payload.concerts) {
            if (!ownership.owns(concertId)) Metrics.deskOrdersPassedOn.unsafeUpdate(orders.length, [])
          }
          let timer: ReturnType<typeof setTimeout> | undefined
          let replied = false
          // A concert is answered whole, or not at all (no outcomes: its sender sends its batch
          // again, through the cluster, and the journal's keys make a written order's repeat
          // that order's ticket). Not known: an order left unknown here (this runner stopping),
          // or still out when the desk answers.
          const reply = () => {
            if (replied) return
            replied = true
            if (timer !== undefined) clearTimeout(timer)
            resume(Effect.succeed(outcomes.map((answers, i) => (left[i] === 0 ? answers : []))))
          }
          payload.concerts.forEach(({ concertId, orders }, i) =>
            sales.relay(concertId, orders, (j, exit) => {
              if (replied) return
              if (left[i]! > 0) {
                if (Exit.isSuccess(exit)) outcomes[i]![j] = toDesk(concertId, orders[j]!, exit.value)
                else {
                  const failure = Cause.failureOption(exit.cause)
                  if (Option.isSome(failure)) outcomes[i]![j] = failure.value
                  else left[i] = -1
                }
                if (left[i]! > 0) left[i]!--
              }
              if (--pending === 0) reply()
            })
          )
          if (replied) return
          const deadline = earliestDeadline(payload.concerts.flatMap(({ orders }) => orders))
          const wait = deadline === undefined ? undefined : deadline + deskGrace - Date.now()
          // No timer beyond what setTimeout can hold (it would fire at once).
          if (wait !== undefined && wait < 2 ** 31 - 1) {
            timer = setTimeout(reply, Math.max(0, wait))
            timer.unref()
          }
          return Effect.sync(() => {
            replied = true
            if (timer !== undefined) clearTimeout(timer)
          })
        })
    }
  }),
  // One message in flight per sending process; each may carry every concert's batch.
  { concurrency: "unbounded" }
)
