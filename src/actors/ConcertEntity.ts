/**
 * The concert entity: the single writer of one concert's seats. Its loop drains the mailbox,
 * plans every waiting purchase against the ledger it holds (`ConcertState`) with the pure
 * rules (`SeatLedger.plan`, then `PurchaseBatch`), journals the winners in one statement
 * (group commit) and only then replies. Holds of several seats (reservations) go in the same
 * batches as purchases; a reservation's later steps (checkout, payment, cancel), its expiry,
 * updates and sale settings run in their arrival order between batches. The entity sets its
 * own wake-up (`HoldTimers`) at its earliest hold expiry, and releases lapsed holds before
 * deciding anything else. The commonest batch (plain purchases from this process, with nothing
 * else waiting) takes the loop's steps without a fiber: the express lane.
 */
import * as Entity from "@effect/cluster/Entity"
import type * as Envelope from "@effect/cluster/Envelope"
import { Cause, Chunk, Clock, Config, Effect, Either, Exit, Fiber, FiberId, Layer, Mailbox, Option, Runtime, Schedule, Tracer } from "effect"
import {
  type ChangeSale,
  ConcertEntity,
  type Expire,
  JournalUnavailable,
  type Order,
  type PurchaseOutcome,
  type RegisterOrder,
  type Withdraw,
  type Purchases,
  type Transition,
  type Update
} from "../domain/ConcertEntity.js"
import {
  BadSaleSettings,
  ConcertNotFound,
  RegistrationNotFound,
  ReservationNotFound,
  SaleLocked,
  WrongState
} from "../domain/Errors.js"
import { ConcertId, TicketId } from "../domain/Ids.js"
import { RegistrationRecord } from "../domain/Registration.js"
import { ReservationId, ReservationRecord } from "../domain/Reservation.js"
import { drawDue, saleSettings } from "../domain/Sale.js"
import { TicketRecord } from "../domain/Ticket.js"
import { CurrentOrganiser, newId, organiserOf } from "../domain/Organiser.js"
import { Background } from "../sql/Organisers.js"
import { ConcertJournal, type JournalError, type Offer } from "../sql/ConcertJournal.js"
import { type Loaded, ConcertState } from "./ConcertState.js"
import { HoldTimers } from "./HoldTimers.js"
import * as Draw from "./Draw.js"
import { holdRows, isHold, isRegistration, journalRows, outcomesOf } from "./PurchaseBatch.js"
import { planRegistrations } from "./Registrations.js"
import * as SeatLedger from "./SeatLedger.js"
import * as Metrics from "../Metrics.js"
import { rememberChange } from "./ChangeSpans.js"
import { positiveInteger } from "../Settings.js"
import { Ownership } from "./Ownership.js"
import { type Door, LocalConcerts, type LocalOrders } from "./LocalConcerts.js"
import { withSpan } from "../Spans.js"

type Rpcs = typeof Purchases | typeof Update | typeof Transition | typeof Expire | typeof ChangeSale | typeof Withdraw
type PurchasesRequest = Envelope.Request<typeof Purchases>
type UpdateRequest = Envelope.Request<typeof Update>
type TransitionRequest = Envelope.Request<typeof Transition>
type ExpireRequest = Envelope.Request<typeof Expire>
type ChangeSaleRequest = Envelope.Request<typeof ChangeSale>
type WithdrawRequest = Envelope.Request<typeof Withdraw>
/** What the entity's loop takes: the cluster's messages, and orders handed over in this process. */
type Item = Envelope.Request<Rpcs> | LocalOrders
type PurchasesItem = PurchasesRequest | LocalOrders

/**
 * `Effect.timeoutOption` with one fiber instead of two: `self` runs in a child fiber, which a
 * timer interrupts at the deadline (and is waited for); `None` when it was cut off there. Every
 * batch pays for it: a second fiber to sleep, and the race between the two, were a third of a
 * batch's runtime steps. The timer is Node's, not the Effect clock's (a `TestClock` does not
 * move it); a deadline beyond its longest delay (24.8 days) sets none.
 */
const within = (millis: number) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<Option.Option<A>, E, R> =>
  Effect.flatMap(Effect.fork(self), (fiber) =>
    Effect.async<Option.Option<A>, E>((resume) => {
      let cutOff = false
      const timer = millis > 2 ** 31 - 1 ? undefined : setTimeout(() => {
        cutOff = true
        fiber.unsafeInterruptAsFork(FiberId.none)
      }, millis)
      timer?.unref()
      fiber.addObserver((exit) => {
        clearTimeout(timer)
        resume(cutOff && Exit.isInterrupted(exit) ? Exit.succeed(Option.none()) : Exit.map(exit, Option.some))
      })
      return Fiber.interrupt(fiber)
    }))

const isPurchases = (item: Item): item is PurchasesItem => item._tag === "LocalOrders" || item.tag === "Purchases"

/** The answer to an order past its deadline (one instance: an error is costly to build). */
const late = new JournalUnavailable({ reason: "the purchase could not be saved in time" })

/** How often a batch that hit a constraint is retried, one order at a time, after a reload. */
const maxConflictAttempts = 3

const wrongState = (reservation: ReservationRecord, action: "checkout" | "payment" | "cancel") =>
  new WrongState({
    message: action === "checkout"
      ? `reservation ${reservation.id} is ${reservation.status}: only a HELD reservation can be checked out`
      : action === "payment"
      ? `reservation ${reservation.id} is ${reservation.status}: it can no longer be paid for`
      : `reservation ${reservation.id} is ${reservation.status}: it can no longer be cancelled`
  })

const make = Effect.gen(function*() {
  const journal = yield* ConcertJournal
  const timers = yield* HoldTimers
  const address = yield* Entity.CurrentAddress
  const concertId = ConcertId.make(address.entityId)
  const locals = yield* LocalConcerts
  const clock = yield* Effect.clock

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
            taken: SeatLedger.taken(after),
            capacity: after.concert.capacity,
            was: before.concert.status
          })
        )

    /** The concert's figures for `/metrics` and the dashboard, after whatever changed. */
    const publish = () => {
      const loaded = state.snapshot()
      if (loaded === undefined) return
      const { concert } = loaded.ledger
      const taken = SeatLedger.taken(loaded.ledger)
      const held = state.heldSeats()
      Metrics.publishConcert(concertId, {
        name: concert.name,
        date: concert.date,
        status: concert.status,
        capacity: concert.capacity,
        sold: taken - held,
        held,
        free: concert.capacity - taken,
        waiting: state.waitingCount(),
        mode: loaded.ledger.sale.mode,
        opensAt: loaded.ledger.sale.opensAt,
        drawnAt: loaded.ledger.sale.drawnAt,
        registered: state.registrations().size
      })
    }

    const unavailable = (error: JournalError) =>
      new JournalUnavailable({ reason: error.kind === "Conflict" ? "conflicting write" : "database unavailable" })

    /** Sets the wake-up at the earliest hold expiry or the pending draw, whichever comes first. */
    const rewake = Effect.suspend(() => {
      const expiry = state.earliestExpiry()
      const loaded = state.snapshot()
      const sale = loaded?.ledger.sale
      const draw = sale !== undefined && sale.mode === "DRAW" && sale.drawnAt === null && sale.opensAt !== null
        ? sale.opensAt
        : undefined
      const at = expiry === undefined ? draw : draw === undefined ? expiry : Math.min(expiry, draw)
      return timers.wake(concertId, at)
    })

    /** Whether a draw's line is being served: nobody buys outside it then. */
    const byDraw = (ledger: SeatLedger.Ledger) =>
      ledger.sale.mode === "DRAW" && ledger.sale.drawnAt !== null && (state.line().length > 0 || state.offerCount() > 0)

    /** New held reservations for `registrations`, in order (the caller checked they fit). */
    const offersFor = (ledger: SeatLedger.Ledger, registrations: ReadonlyArray<RegistrationRecord>, now: number) => {
      const held = SeatLedger.holdFor(ledger, registrations.map((r) => r.quantity))
      const expiresAt = now + ledger.sale.holdSeconds * 1000
      const offers: Array<Offer> = registrations.map((registration, i) => ({
        id: ReservationId.make(newId(organiserOf(concertId))),
        userId: registration.userId,
        seats: held.seats[i]!,
        expiresAt,
        idempotencyKey: undefined,
        registrationId: registration.id
      }))
      return { ledger: held.ledger, offers }
    }

    /** The offers are journaled: the reservations hold seats, the registrations are OFFERED. */
    const adoptOffers = (ledger: SeatLedger.Ledger, offers: ReadonlyArray<Offer>) => {
      state.adopt(ledger)
      const registrations = state.registrations()
      for (const offer of offers) {
        const registration = registrations.get(offer.registrationId)!
        state.hold(
          new ReservationRecord({
            id: ReservationId.make(offer.id),
            concertId,
            userId: registration.userId,
            quantity: registration.quantity,
            seats: offer.seats,
            status: "HELD",
            expiresAt: offer.expiresAt,
            invoiceNumber: null,
            tickets: []
          }, { disableValidation: true })
        )
        state.register(
          new RegistrationRecord({ ...registration, status: "OFFERED", reservationId: ReservationId.make(offer.id) }, { disableValidation: true })
        )
      }
    }

    /**
     * The draw, exactly once: the registrations in the order the seed gives, an offer to each
     * whose quantity fits, the rest WAITING in that order; journaled in one transaction that also
     * marks the concert drawn. Run by the first decision after `opens_at` (the wake-up, or a
     * request), also after a restart across it.
     */
    const runDraw = (ledger: SeatLedger.Ledger, now: number) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const seed = yield* journal.drawSeed(concertId)
        const registered = [...state.registrations().values()].filter((r) => r.status === "REGISTERED")
        const order = Draw.drawOrder(seed, registered)
        const { offered } = Draw.allocate(order, SeatLedger.offersSeats(ledger) ? SeatLedger.remaining(ledger) : 0)
        const chosen = new Set(offered.map((r) => r.id))
        const { ledger: held, offers } = offersFor(ledger, offered, now)
        const drawn = SeatLedger.withSale(held, { ...held.sale, drawnAt: now })
        // The state is updated before the write, so that nothing is left to do once it commits
        // (buyers read the outcome at once); a failed write makes every caller forget the state.
        order.forEach((registration, i) => {
          state.register(
            new RegistrationRecord(
              { ...registration, status: chosen.has(registration.id) ? registration.status : "WAITING", lineNo: i + 1 },
              { disableValidation: true }
            )
          )
        })
        adoptOffers(drawn, offers)
        const decided = yield* Clock.currentTimeMillis
        yield* journal.draw(drawn, offers, order.map((r) => r.id), now)
        Metrics.draws.unsafeUpdate(1, [])
        Metrics.offers.unsafeUpdate(offers.length, [])
        const journaled = yield* Clock.currentTimeMillis
        yield* Effect.logInfo("draw run").pipe(
          Effect.annotateLogs({
            concertId,
            registrations: order.length,
            offered: offers.length,
            waiting: order.length - offers.length,
            lateMillis: started - (ledger.sale.opensAt ?? started),
            decideMillis: decided - started,
            journalMillis: journaled - decided
          })
        )
        yield* statusChange(ledger, drawn)
      })

    /** Seats free while people wait: offered at once to each in line whose quantity fits. */
    const offerToLine = (ledger: SeatLedger.Ledger, now: number) =>
      Effect.gen(function*() {
        const line = state.line()
        if (line.length === 0 || !SeatLedger.offersSeats(ledger)) return
        const { offered } = Draw.allocate(line, SeatLedger.remaining(ledger))
        if (offered.length === 0) return
        const { ledger: next, offers } = offersFor(ledger, offered, now)
        yield* journal.offer(next, offers)
        Metrics.offers.unsafeUpdate(offers.length, [])
        adoptOffers(next, offers)
        yield* statusChange(ledger, next)
      })

    /**
     * Holds released as `status` (one transaction): their seats free, their invoice numbers back
     * in the pool, the registrations their offers were made to let go.
     */
    const releaseHolds = (
      ledger: SeatLedger.Ledger,
      reservations: ReadonlyArray<ReservationRecord>,
      status: "EXPIRED" | "CANCELLED",
      message: string
    ) =>
      Effect.gen(function*() {
        const after = SeatLedger.release(ledger, reservations.flatMap((r) => r.seats))
        yield* journal.release(after, reservations.map((r) => r.id), status)
        state.adopt(after)
        for (const r of reservations) {
          state.drop(r.id)
          const offered = state.offeredFor(r.id)
          if (offered !== undefined) state.dropRegistration(offered)
        }
        yield* Effect.logInfo(message).pipe(
          Effect.annotateLogs({ concertId, reservations: reservations.length, seats: reservations.reduce((n, r) => n + r.quantity, 0) })
        )
        return after
      })

    /**
     * Live reservations cancelled with their concert, as a buyer's cancel would: nothing can be
     * bought for a cancelled concert, a hold made before it included.
     */
    const cancelWithConcert = (ledger: SeatLedger.Ledger, reservations: ReadonlyArray<ReservationRecord>) =>
      reservations.length === 0
        ? Effect.succeed(ledger)
        : releaseHolds(ledger, reservations, "CANCELLED", "holds cancelled with their concert")

    /**
     * The concert as loaded and settled: every hold past its expiry released (one transaction),
     * the draw run if its time has come, and seats that are free while people wait offered to
     * them. Whatever is decided next sees that state, whether or not a wake-up came yet.
     */
    const caughtUp: Effect.Effect<Option.Option<Loaded>, JournalError> = Effect.gen(function*() {
      const loaded = yield* state.current
      if (Option.isNone(loaded)) return loaded
      const now = yield* Clock.currentTimeMillis
      const lapsed = [...loaded.value.live.values()].filter((r) => r.expiresAt !== null && r.expiresAt <= now)
      const due = drawDue(loaded.value.ledger.sale, now)
      if (lapsed.length === 0 && !due) return loaded
      if (lapsed.length > 0) {
        const before = loaded.value.ledger
        const after = yield* releaseHolds(before, lapsed, "EXPIRED", "holds expired")
        yield* statusChange(before, after)
      }
      const settled = state.snapshot()!.ledger
      if (due) yield* runDraw(settled, now)
      else yield* offerToLine(settled, now)
      yield* rewake
      return yield* state.current
    })
    /** What `caughtUp` gives, at once when nothing has lapsed and no draw is due (every batch but a few). */
    const current: Effect.Effect<Option.Option<Loaded>, JournalError> = Effect.suspend(() => {
      const held = state.snapshot()
      if (held === undefined) return caughtUp
      const now = clock.unsafeCurrentTimeMillis()
      if (drawDue(held.ledger.sale, now)) return caughtUp
      for (const r of held.live.values()) if (r.expiresAt !== null && r.expiresAt <= now) return caughtUp
      return state.current
    })

    /** Plans every order against the ledger, journals the winners in one statement, then answers. */
    const decide = (
      orders: ReadonlyArray<Order>,
      attempt: number
    ): Effect.Effect<ReadonlyArray<PurchaseOutcome>, ConcertNotFound> =>
      Effect.gen(function*() {
        const loaded = yield* current
        if (Option.isNone(loaded)) return yield* ConcertNotFound.of(concertId)
        const ledger = loaded.value.ledger

        const keys = orders.flatMap((order) => order.idempotencyKey ?? [])
        const existing = new Map<string, TicketRecord | ReservationRecord>()
        if (keys.length > 0) {
          // A key is one request, whichever kind: a purchase with a reservation's key is a reuse.
          // Both kinds are looked up at once, one round trip's time.
          const [tickets, reservations] = yield* Effect.all(
            [journal.findByKeys(keys), journal.reservationsByKeys(keys)],
            { concurrency: 2 }
          )
          for (const { idempotencyKey, ...ticket } of tickets) existing.set(idempotencyKey, new TicketRecord(ticket))
          for (const { idempotencyKey, ...reservation } of reservations) {
            // A retry after payment answers with the tickets, as GET does.
            const full = reservation.status === "CONFIRMED"
              ? Option.getOrUndefined(yield* journal.findReservation(reservation.id))
              : undefined
            existing.set(idempotencyKey, full ?? new ReservationRecord({ ...reservation, tickets: [] }))
          }
        }

        // Registrations are decided after the batch's purchases and holds, against the ledger
        // those leave (a sell-out in this batch opens the line to this batch's registrations).
        const seatOrders: Array<Order> = []
        const registerOrders: Array<RegisterOrder> = []
        for (const order of orders) {
          if (isRegistration(order)) registerOrders.push(order)
          else seatOrders.push(order)
        }
        const now = clock.unsafeCurrentTimeMillis()
        const plan = SeatLedger.plan(ledger, seatOrders as Array<SeatLedger.Request>, existing, now, byDraw(ledger))
        const seatOutcomes = outcomesOf(concertId, seatOrders, plan, now, state.earliestExpiry())
        Metrics.batchOrders.unsafeUpdate(orders.length, [])
        if (plan.allocated > 0) {
          yield* journal.append(plan.ledger, journalRows(seatOrders, plan), holdRows(seatOrders, plan, now))
          Metrics.groupCommits.unsafeUpdate(1, [])
          yield* rememberChange(concertId)
          state.adopt(plan.ledger)
          let held = false
          for (const outcome of seatOutcomes) {
            if (outcome instanceof ReservationRecord && outcome.status === "HELD" && !loaded.value.live.has(outcome.id)) {
              state.hold(outcome)
              held = true
            }
          }
          if (held) yield* rewake
          yield* statusChange(ledger, plan.ledger)
        }
        if (registerOrders.length === 0) return seatOutcomes
        const after = plan.allocated > 0 ? plan.ledger : ledger
        // The batch's tickets and holds are saved by now: a failure from here on is the
        // registrations' alone (503 for them, the state reloaded), never the buyers'.
        const registrationOutcomes = yield* Effect.gen(function*() {
          const registered = planRegistrations(
            concertId,
            after,
            state.liveByUser(),
            state.registrations(),
            () => state.nextLineNo(),
            registerOrders
          )
          yield* journal.register(concertId, registered.added)
          for (const registration of registered.added) state.register(registration)
          if (registered.added.some((r) => r.status === "WAITING")) {
            yield* offerToLine(after, now)
            yield* rewake
          }
          // A registration offered seats at once answers as OFFERED.
          return registered.outcomes.map((outcome): PurchaseOutcome =>
            outcome instanceof RegistrationRecord ? state.registrations().get(outcome.id) ?? outcome : outcome
          )
        }).pipe(
          Effect.catchTag("JournalError", (error) => {
            state.forget()
            return Effect.as(
              Effect.logError("registrations could not be saved").pipe(
                Effect.annotateLogs({ concertId, registrations: registerOrders.length, cause: String(error.cause) })
              ),
              registerOrders.map(() => unavailable(error))
            )
          })
        )
        // In arrival order.
        let seat = 0
        let registration = 0
        return orders.map((order): PurchaseOutcome =>
          isRegistration(order) ? registrationOutcomes[registration++]! : seatOutcomes[seat++]!
        )
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

    /** A retried order whose ticket (or reservation) is already journaled gets it back. */
    const decideAlone = (order: Order, attempt: number): Effect.Effect<PurchaseOutcome, ConcertNotFound> =>
      (isRegistration(order)
        ? journal.findRegistration(order.registrationId) as Effect.Effect<Option.Option<PurchaseOutcome>, JournalError>
        : isHold(order)
        ? journal.findReservation(order.reservationId)
        : journal.findTicket(order.ticketId) as Effect.Effect<Option.Option<TicketRecord | ReservationRecord>, JournalError>).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.map(decide([order], attempt + 1), (outcomes) => outcomes[0]!),
          onSome: (found): Effect.Effect<PurchaseOutcome> => Effect.succeed(found)
        })),
        Effect.catchTag("JournalError", (error) => Effect.succeed(unavailable(error)))
      )

    /**
     * Orders past their deadline are refused unwritten; the rest are decided within the
     * earliest deadline among them. A decision cut off there is interrupted, and with it the
     * journal statement (cancelled in the database, or never sent if it waited for a
     * connection): the buyers are answered 503 and the ledger is reloaded before the next batch.
     */
    const decideInTime = (orders: ReadonlyArray<Order>) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const live: Array<Order> = []
        let earliest = Infinity
        for (const order of orders) {
          if (order.deadline === undefined || order.deadline > now) {
            live.push(order)
            if (order.deadline !== undefined && order.deadline < earliest) earliest = order.deadline
          }
        }
        const decided = live.length === 0
          ? Effect.succeed<ReadonlyArray<PurchaseOutcome>>([])
          : earliest === Infinity
          ? decide(live, 1)
          : Effect.interruptible(decide(live, 1)).pipe(
            // Interruptible by this deadline alone: the batch itself is not (`handle`).
            within(earliest - now),
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

    /**
     * Every order of consecutive `Purchases` messages is decided as one batch. Its span is a
     * child of the first message's sender (the batch that process sent) and links to the
     * others; the journal write and the replies are its children.
     */
    const purchases = (requests: ReadonlyArray<PurchasesItem>) => {
      const ordersOf = (request: PurchasesItem) => request._tag === "LocalOrders" ? request.orders : request.payload.orders
      const orders = requests.flatMap(ordersOf)
      const senders: Array<Tracer.AnySpan> = []
      for (const request of requests) {
        Metrics.messageOrders.unsafeUpdate(ordersOf(request).length, [])
        if (request._tag === "LocalOrders") {
          if (request.span !== undefined) senders.push(request.span)
          continue
        }
        const { sampled, spanId, traceId } = request
        if (spanId !== undefined && traceId !== undefined) senders.push(Tracer.externalSpan({ traceId, spanId, sampled }))
      }
      const [parent, ...others] = senders
      const answer = (request: PurchasesItem, exit: Exit.Exit<ReadonlyArray<PurchaseOutcome>, ConcertNotFound>) =>
        request._tag === "LocalOrders" ? Effect.sync(() => answerLocal(request, exit)) : replier.complete(request, exit)
      /** Each request's share of the outcomes, or the failure for all. */
      const exits = (
        decided: Either.Either<ReadonlyArray<PurchaseOutcome>, ConcertNotFound>
      ): ReadonlyArray<Exit.Exit<ReadonlyArray<PurchaseOutcome>, ConcertNotFound>> =>
        Either.match(decided, {
          onLeft: (error) => requests.map(() => Exit.fail(error)),
          onRight: (outcomes) => {
            let offset = 0
            return requests.map((request) => {
              const count = ordersOf(request).length
              offset += count
              return Exit.succeed(outcomes.slice(offset - count, offset))
            })
          }
        })
      // Orders from this process are answered in one step; the cluster's requests through it.
      const local = requests.every((request) => request._tag === "LocalOrders")
      const reply = (decided: Either.Either<ReadonlyArray<PurchaseOutcome>, ConcertNotFound>) =>
        (local
          ? Effect.sync(() => exits(decided).forEach((exit, i) => answerLocal(requests[i] as LocalOrders, exit)))
          : Effect.forEach(exits(decided), (exit, i) => answer(requests[i]!, exit), { discard: true })).pipe(
            withSpan("ConcertEntity.reply", { captureStackTrace: false, attributes: { messages: requests.length } })
          )
      return decideInTime(orders).pipe(
        Effect.matchEffect({
          onFailure: (error) => reply(Either.left(error)),
          onSuccess: (outcomes) => reply(Either.right(outcomes))
        }),
        withSpan("ConcertEntity.purchases", {
          captureStackTrace: false,
          attributes: { concertId, messages: requests.length, batch: orders.length },
          ...(parent === undefined ? { root: true } : { parent }),
          links: others.map((span): Tracer.SpanLink => ({ _tag: "SpanLink", span, attributes: {} }))
        })
      )
    }

    /** One request decided alone: a journal failure answers 503 and the state is reloaded next time. */
    const alone = <R extends Rpcs>(
      request: Envelope.Request<R>,
      name: string,
      body: (loaded: Loaded) => Effect.Effect<void, JournalError>
    ) =>
      Effect.gen(function*() {
        const loaded = yield* current
        if (Option.isNone(loaded)) return yield* replier.fail(request as never, ConcertNotFound.of(concertId) as never)
        yield* body(loaded.value)
      }).pipe(
        Effect.catchTag("JournalError", (error) => {
          state.forget()
          return replier.fail(request as never, unavailable(error) as never)
        }),
        withSpan(`ConcertEntity.${name}`, { captureStackTrace: false, attributes: { concertId } })
      )

    const update = (request: UpdateRequest) =>
      alone(request, "update", ({ ledger }) =>
        Effect.gen(function*() {
          const next = SeatLedger.applyUpdate(ledger, request.payload)
          yield* journal.update(next)
          state.adopt(next)
          yield* statusChange(ledger, next)
          if (next.concert.status === "CANCELLED" && ledger.concert.status !== "CANCELLED") {
            // The update is saved: a failure here is the holds' alone (a later checkout or
            // payment of one cancels it then), not the organiser's 503.
            yield* cancelWithConcert(next, [...(state.snapshot()?.live.values() ?? [])]).pipe(
              Effect.catchTag("JournalError", (error) => {
                state.forget()
                return Effect.logWarning("holds of a cancelled concert not cancelled yet").pipe(
                  Effect.annotateLogs({ concertId, cause: String(error.cause) })
                )
              })
            )
          }
          // A concert reopened by its organiser gives its free seats to those in line first.
          yield* offerToLine(next, yield* Clock.currentTimeMillis)
          yield* rewake
          yield* replier.succeed(request, state.snapshot()?.ledger.concert ?? next.concert)
        }))

    /**
     * New sale settings. A switch to DRAW needs `opens_at` in the future and commits to a new
     * secret seed (its SHA-256 is published at once); once the draw has run, `mode` and
     * `opens_at` are fixed, and a draw people registered for stays a draw.
     */
    const changeSale = (request: ChangeSaleRequest) =>
      alone(request, "changeSale", ({ ledger }) =>
        Effect.gen(function*() {
          const { hold_seconds, max_per_reservation, mode, opens_at, payment_seconds } = request.payload
          const sale = ledger.sale
          const nextMode = mode ?? sale.mode
          const nextOpensAt = opens_at === undefined ? sale.opensAt : opens_at === null ? null : Date.parse(opens_at)
          const now = yield* Clock.currentTimeMillis
          const timingChanged = nextMode !== sale.mode || nextOpensAt !== sale.opensAt
          if (sale.drawnAt !== null && timingChanged) {
            return yield* replier.fail(request, new SaleLocked({ message: "the draw has run: mode and opens_at can no longer change" }))
          }
          if (sale.mode === "DRAW" && nextMode !== "DRAW" && state.registrations().size > 0) {
            return yield* replier.fail(request, new SaleLocked({ message: "people have registered for this draw: the sale stays a draw" }))
          }
          if (sale.mode !== "DRAW" && nextMode === "DRAW" && (state.registrations().size > 0 || state.nextLineNo() > 1)) {
            return yield* replier.fail(
              request,
              new SaleLocked({ message: "this concert already has a waiting line: it cannot switch to a draw" })
            )
          }
          if (nextMode === "DRAW" && timingChanged && (nextOpensAt === null || nextOpensAt <= now)) {
            return yield* replier.fail(request, new BadSaleSettings({ message: "a DRAW sale needs opens_at in the future" }))
          }
          const seed = nextMode === "DRAW" && sale.commitment === null ? Draw.newSeed() : undefined
          const next = SeatLedger.withSale(ledger, {
            maxPerReservation: max_per_reservation ?? sale.maxPerReservation,
            holdSeconds: hold_seconds ?? sale.holdSeconds,
            paymentSeconds: payment_seconds ?? sale.paymentSeconds,
            mode: nextMode,
            opensAt: nextOpensAt,
            commitment: seed !== undefined ? Draw.commitment(seed) : nextMode === "DRAW" ? sale.commitment : null,
            drawnAt: sale.drawnAt
          })
          yield* journal.updateSale(next, seed)
          state.adopt(next)
          yield* rewake
          yield* replier.succeed(request, saleSettings(concertId, next.sale))
        }))

    /** A registration withdrawn: an offer's reservation is released and its seats go down the line. */
    const withdraw = (request: WithdrawRequest) =>
      alone(request, "withdraw", ({ ledger }) =>
        Effect.gen(function*() {
          const { registrationId } = request.payload
          const registration = state.registrations().get(registrationId)
          if (registration === undefined) {
            const found = yield* journal.findRegistration(registrationId)
            if (Option.isNone(found) || found.value.concertId !== concertId) {
              return yield* replier.fail(request, RegistrationNotFound.of(registrationId))
            }
            if (found.value.status === "WITHDRAWN") return yield* replier.succeed(request, found.value)
            return yield* replier.fail(
              request,
              new WrongState({ message: `registration ${registrationId} is ${found.value.status}: it can no longer be withdrawn` })
            )
          }
          const reservation = registration.reservationId === null ? undefined : state.snapshot()?.live.get(registration.reservationId)
          let after = ledger
          if (reservation !== undefined) {
            after = SeatLedger.release(ledger, reservation.seats)
            yield* journal.release(after, [reservation.id], "CANCELLED")
            state.adopt(after)
            state.drop(reservation.id)
          } else {
            yield* journal.withdraw(registrationId)
          }
          state.dropRegistration(registrationId)
          yield* statusChange(ledger, after)
          const now = yield* Clock.currentTimeMillis
          yield* offerToLine(after, now)
          yield* rewake
          yield* replier.succeed(request, new RegistrationRecord({ ...registration, status: "WITHDRAWN" }))
        }))

    /** `Expire`: `current` has released whatever lapsed; set the next wake-up. */
    const expire = (request: ExpireRequest) =>
      alone(request, "expire", () => Effect.zipRight(rewake, replier.succeed(request, void 0)))

    /** A reservation no longer live (or of another concert) answers from the journal. */
    const settled = (request: TransitionRequest) =>
      Effect.gen(function*() {
        const { action, reservationId } = request.payload
        const found = yield* journal.findReservation(reservationId)
        if (Option.isNone(found) || found.value.concertId !== concertId) {
          return yield* replier.fail(request, ReservationNotFound.of(reservationId))
        }
        const reservation = found.value
        if (action === "payment" && reservation.status === "CONFIRMED") return yield* replier.succeed(request, reservation)
        if (action === "cancel" && reservation.status === "CANCELLED") return yield* replier.succeed(request, reservation)
        return yield* replier.fail(request, wrongState(reservation, action))
      })

    const transition = (request: TransitionRequest) =>
      alone(request, "transition", ({ ledger, live }) =>
        Effect.gen(function*() {
          const { action, reservationId } = request.payload
          const reservation = live.get(reservationId)
          if (reservation === undefined) return yield* settled(request)
          if (ledger.concert.status === "CANCELLED" && action !== "cancel") {
            // Left live by a cancellation whose release failed: cancelled now, never paid for.
            yield* cancelWithConcert(ledger, [reservation])
            return yield* replier.fail(
              request,
              new WrongState({
                message: `reservation ${reservationId} was cancelled with its concert: it can no longer be ${
                  action === "checkout" ? "checked out" : "paid for"
                }`
              })
            )
          }
          const now = yield* Clock.currentTimeMillis
          if (action === "checkout") {
            if (reservation.status !== "HELD") return yield* replier.fail(request, wrongState(reservation, action))
            const expiresAt = now + ledger.sale.paymentSeconds * 1000
            const invoiceNumber = yield* journal.checkout(reservationId, expiresAt)
            const next = new ReservationRecord({ ...reservation, status: "AWAITING_PAYMENT", expiresAt, invoiceNumber })
            state.hold(next)
            yield* rewake
            return yield* replier.succeed(request, next)
          }
          if (action === "payment") {
            const tickets = reservation.seats.map((seat) =>
              new TicketRecord({
                id: TicketId.make(newId(organiserOf(concertId))),
                concertId,
                userId: reservation.userId,
                seat,
                printStatus: "NOT_PRINTED"
              })
            )
            const rows = tickets.map((t) => ({ id: t.id, seat: t.seat, userId: t.userId, idempotencyKey: undefined }))
            const invoiceNumber = yield* journal.confirm(ledger, reservationId, reservation.userId, rows)
            state.drop(reservationId)
            const offered = state.offeredFor(reservationId)
            if (offered !== undefined) state.dropRegistration(offered)
            yield* rewake
            return yield* replier.succeed(
              request,
              new ReservationRecord({ ...reservation, status: "CONFIRMED", expiresAt: null, invoiceNumber, tickets })
            )
          }
          const next = SeatLedger.release(ledger, reservation.seats)
          yield* journal.release(next, [reservationId], "CANCELLED")
          state.adopt(next)
          state.drop(reservationId)
          const offered = state.offeredFor(reservationId)
          if (offered !== undefined) state.dropRegistration(offered)
          yield* statusChange(ledger, next)
          yield* offerToLine(next, now)
          yield* rewake
          return yield* replier.succeed(
            request,
            new ReservationRecord({ ...reservation, status: "CANCELLED", expiresAt: null, invoiceNumber: null })
          )
        }))

    /** Consecutive purchase messages form one batch; anything else is applied where it arrived. */
    const handle = Effect.fnUntraced(function*(requests: ReadonlyArray<Item>) {
      let start = 0
      while (start < requests.length) {
        const request = requests[start]!
        if (!isPurchases(request)) {
          yield* request.tag === "Update"
            ? update(request as UpdateRequest)
            : request.tag === "Transition"
            ? transition(request as TransitionRequest)
            : request.tag === "Expire"
            ? expire(request as ExpireRequest)
            : request.tag === "Withdraw"
            ? withdraw(request as WithdrawRequest)
            : changeSale(request as ChangeSaleRequest)
          start += 1
          continue
        }
        let end = start
        while (end < requests.length && isPurchases(requests[end]!)) end += 1
        // Interrupting the entity (its shard moving, the idle reaper) does not cut off a batch
        // under way: the cluster lets its own requests finish before it interrupts, and orders
        // that came through the door are not its requests. Bounded by the orders' deadlines.
        yield* Effect.uninterruptible(purchases(requests.slice(start, end) as Array<PurchasesItem>))
        start = end
      }
    })

    /**
     * Orders from this process come in through the door: decided at once in the express lane
     * when it may take them, else put in the inbox beside the cluster's messages (moved there
     * as they arrive) and taken in one order with them. Orders taken and not yet answered when
     * the entity stops are answered as lost: their sender sends them again, through the
     * cluster, and the journal's unique keys make that safe.
     */
    const taken = new Set<LocalOrders>()
    const answerLocal = (orders: LocalOrders, exit: Exit.Exit<ReadonlyArray<PurchaseOutcome>, ConcertNotFound>) => {
      if (!taken.delete(orders)) return
      try {
        orders.done(exit)
      } catch {
        // What the sender does with its answer is its own: a throw there must not stop this
        // entity (nor, in the express lane, its database's writer).
      }
    }

    /** No idempotency key in an express batch: nothing to look up. */
    const noneExisting: ReadonlyMap<string, TicketRecord | ReservationRecord> = new Map()

    return Effect.gen(function*() {
      const inbox = yield* Mailbox.make<Item>()
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      let open = true
      /** The loop took messages from the inbox and decides them: no express batch starts. */
      let looping = false
      /** The express batch being decided, if any: the loop waits for it (`afterExpress`). */
      let expressing: LocalOrders | undefined
      let expressDone: (() => void) | undefined
      const afterExpress = Effect.suspend(() =>
        expressing === undefined ? Effect.void : Effect.async<void>((resume) => {
          expressDone = () => resume(Effect.void)
        })
      )

      /**
       * The express lane: a batch of plain purchases from this process (no idempotency key, no
       * hold, no registration, no span to carry), decided without a fiber when nothing else is
       * being decided or waits in the inbox and the concert's state is held and caught up. It
       * takes the loop's steps for that case: planned against the ledger, journaled in its
       * database's next statement (by the earliest deadline, else given up and answered 503),
       * adopted, then answered. A conflict sends the batch back to the inbox: the loop decides
       * it again from the journal (and, conflicting again, one order at a time). A defect
       * answers its orders as lost, as a defect that stops the entity does. False when the
       * batch is not for this lane; it then goes through the inbox.
       */
      const express = (request: LocalOrders): boolean => {
        if (request.span !== undefined) return false
        const held = state.snapshot()
        if (held === undefined) return false
        const now = clock.unsafeCurrentTimeMillis()
        if (drawDue(held.ledger.sale, now)) return false
        // One pass over the live holds: caught up (none lapsed), and when seats may come back.
        const heldUntil = state.earliestExpiry()
        if (heldUntil !== undefined && heldUntil <= now) return false
        let earliest = Infinity
        const live: Array<Order> = []
        for (const order of request.orders) {
          if (isHold(order) || isRegistration(order) || order.idempotencyKey !== undefined) return false
          if (order.deadline === undefined || order.deadline > now) {
            live.push(order)
            if (order.deadline !== undefined && order.deadline < earliest) earliest = order.deadline
          }
        }
        expressing = request
        Metrics.expressBatches.unsafeUpdate(1, [])
        Metrics.publishMailbox(concertId, 1)
        Metrics.messageOrders.unsafeUpdate(request.orders.length, [])
        /** The batch is decided: the loop may go on (whatever the answer's callback does). */
        const finish = (outcomes: ReadonlyArray<PurchaseOutcome>) => {
          const resume = release(request)
          try {
            publish()
            let next = 0
            answerLocal(
              request,
              Exit.succeed(
                live.length === request.orders.length
                  ? outcomes
                  : request.orders.map((order) => order.deadline === undefined || order.deadline > now ? outcomes[next++]! : late)
              )
            )
          } finally {
            resume?.()
          }
        }
        // Answered later when nothing is written, never inside the door: the answer hands the
        // concert's next batch to the door, which would answer it inside that call, and so on
        // for as long as batches wait.
        if (live.length === 0) {
          queueMicrotask(() => finish([]))
          return true
        }
        const ledger = held.ledger
        const plan = SeatLedger.plan(ledger, live as Array<SeatLedger.Request>, noneExisting, now, byDraw(ledger))
        const outcomes = outcomesOf(concertId, live, plan, now, heldUntil)
        Metrics.batchOrders.unsafeUpdate(live.length, [])
        if (plan.allocated === 0) {
          queueMicrotask(() => finish(outcomes))
          return true
        }
        let timer: ReturnType<typeof setTimeout> | undefined
        const written = (exit: Exit.Exit<void, JournalError>) => {
          clearTimeout(timer)
          if (Exit.isSuccess(exit)) {
            Metrics.groupCommits.unsafeUpdate(1, [])
            state.adopt(plan.ledger)
            if (ledger.concert.status !== plan.ledger.concert.status) runFork(statusChange(ledger, plan.ledger))
            return finish(outcomes)
          }
          state.forget()
          if (Exit.isInterrupted(exit)) {
            runFork(
              Effect.logWarning("journal write cut off at the buyers' deadline").pipe(
                Effect.annotateLogs({ concertId, batch: live.length })
              )
            )
            return finish(live.map(() => late))
          }
          const error = Cause.failureOption(exit.cause)
          if (Option.isNone(error)) return fault(request, Cause.squash(exit.cause))
          if (error.value.kind === "Conflict") {
            runFork(
              Effect.logWarning("journal conflict; deciding the batch again from the journal").pipe(
                Effect.annotateLogs({ concertId, batch: live.length })
              )
            )
            const resume = release(request)
            try {
              if (!open || !inbox.unsafeOffer(request)) answerLocal(request, Exit.interrupt(FiberId.none))
            } finally {
              resume?.()
            }
            return
          }
          runFork(
            Effect.logError("journal write failed").pipe(
              Effect.annotateLogs({ concertId, batch: live.length, cause: String(error.value.cause) })
            )
          )
          const refused = unavailable(error.value)
          return finish(live.map(() => refused))
        }
        const giveUp = journal.unsafeAppend(organiserOf(concertId), plan.ledger, journalRows(live, plan), (exit) => {
          try {
            written(exit)
          } catch (error) {
            fault(request, error)
          }
        })
        // Node's longest delay is 24.8 days: a deadline beyond sets none (as in `within`).
        if (earliest !== Infinity && earliest - now <= 2 ** 31 - 1 && expressing === request) {
          timer = setTimeout(giveUp, earliest - now)
          timer.unref()
        }
        return true
      }

      /** The lane is free again (if `request` held it); the loop, if it waits, goes on when the result is called. */
      const release = (request: LocalOrders) => {
        if (expressing !== request) return undefined
        expressing = undefined
        const resume = expressDone
        expressDone = undefined
        return resume
      }

      /**
       * A throw in the lane (a fault, as a defect in the loop is): the lane is freed, the state
       * forgotten, and orders not answered yet are answered as lost (sent again, through the
       * cluster). Never left holding the loop.
       */
      const fault = (request: LocalOrders, error: unknown) => {
        state.forget()
        runFork(Effect.logError("express batch failed").pipe(Effect.annotateLogs({ concertId, cause: String(error) })))
        const resume = release(request)
        try {
          answerLocal(request, Exit.interrupt(FiberId.none))
        } finally {
          resume?.()
        }
      }

      const door: Door = (orders) => {
        if (!open) return false
        taken.add(orders)
        if (!looping && expressing === undefined && Option.getOrElse(inbox.unsafeSize(), () => 0) === 0) {
          try {
            if (express(orders)) return true
          } catch (error) {
            fault(orders, error)
            return true
          }
        }
        if (inbox.unsafeOffer(orders)) return true
        taken.delete(orders)
        return false
      }
      // An express batch under way is finished first (by its orders' deadline, when they have
      // one), as a batch of the loop is: its write lands before another runner can take the
      // concert.
      const stopped = Effect.suspend(() => {
        open = false
        locals.close(concertId, door)
        return afterExpress
      }).pipe(
        Effect.zipRight(Effect.sync(() => {
          const lost = Exit.interrupt(FiberId.none)
          for (const orders of [...taken]) answerLocal(orders, lost)
        }))
      )
      yield* Effect.fork(Effect.forever(Effect.flatMap(mailbox.takeAll, ([messages]) => inbox.offerAll(messages))))
      // `forever` yields after each round: the buyers just answered run first, and the orders
      // they bring meanwhile make the next batch (without it, purchases measured 0.90-0.96x).
      const loop = inbox.takeAll.pipe(
        Effect.flatMap(([messages]) => {
          looping = true
          Metrics.publishMailbox(concertId, messages.length)
          // Not interruptible while it holds the messages it took (bounded by the lane's deadline).
          return Effect.zipRight(Effect.uninterruptible(afterExpress), handle(Chunk.toReadonlyArray(messages)))
        }),
        Effect.zipRight(Effect.sync(() => {
          looping = false
          publish()
        })),
        Effect.forever
      )
      return yield* Effect.ensuring(Effect.zipRight(Effect.sync(() => locals.open(concertId, door)), loop), stopped)
    }).pipe(
      // The concert's journal is its organiser's database, which its id names. And what it
      // does is never background work, whoever's message (a sweep's wake-up) started it.
      Effect.locally(CurrentOrganiser, organiserOf(concertId)),
      Effect.locally(Background, false)
    )
  }
})

/** The entity's layer, needing its journal (and timers, ownership): the bench swaps the journal. */
export const ConcertEntityLayer = Layer.unwrapEffect(
  Effect.gen(function*() {
    // Each process has one message per concert in flight, but other clients and runners may
    // queue many: they must wait, not overflow. Beyond this, callers get 503 + Retry-After.
    const mailboxCapacity = yield* positiveInteger("CONCERT_MAILBOX_CAPACITY", 50_000)
    const maxIdleTime = yield* Config.duration("CONCERT_MAX_IDLE").pipe(Config.withDefault("5 minutes"))
    return ConcertEntity.toLayerMailbox(make, { mailboxCapacity, maxIdleTime })
  })
)

/**
 * Once a second, the concerts this process no longer owns (their shard went to another runner,
 * whether their entity was running or idle) leave its figures: they are the new owner's.
 */
const FiguresOfOwnedLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const ownership = yield* Ownership
    yield* Effect.forkScoped(Effect.repeat(
      Effect.sync(() => {
        for (const concertId of [...Metrics.concertBoard().keys()]) {
          if (!ownership.owns(concertId)) Metrics.leaveConcert(concertId)
        }
      }),
      Schedule.spaced("1 second")
    ))
  })
)

export const ConcertEntityLive = Layer.merge(ConcertEntityLayer, FiguresOfOwnedLive).pipe(
  Layer.provide([ConcertJournal.Default, HoldTimers.Default, Ownership.Default, LocalConcerts.Default])
)
