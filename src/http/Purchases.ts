/**
 * A buyer's purchase, as `POST /api/v1/tickets` answers it: the order a purchase makes, what a
 * refusal is answered with, and the busiest way through, shared by the endpoint's handler
 * (`TicketsHttp`) and the route that answers a plain purchase ahead of the API's router
 * (`route`, below).
 *
 * The busiest way: a buyer's purchase of a concert known here, on sale as far as this process
 * knows (or with an `Idempotency-Key`, which only the concert can answer), with tracing off and
 * no organiser's API key. Its checks run in plain code and it waits once, for its batch's
 * outcome (`ConcertSales.unsafeBuy`). Anything else takes the handler's full path, with every
 * check as effects and a span.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Clock, Context, Effect, Either, Exit, FiberRef, HashSet, Schema } from "effect"
import type * as Fiber from "effect/Fiber"
import { type BuyRefusal, ConcertSales } from "../actors/ConcertSales.js"
import type { PurchaseOrder } from "../domain/ConcertEntity.js"
import { NotSaved, UnknownConcert } from "../domain/Errors.js"
import { type ConcertId, type Named, TicketId, type UserId } from "../domain/Ids.js"
import { defaultOrganiser, newId, organiserOf } from "../domain/Organiser.js"
import { decodePurchase, IdempotencyKey, ticketJson, type TicketRow } from "../domain/Ticket.js"
import * as Metrics from "../Metrics.js"
import { maxBodyBytes, purchaseTimeoutMillis } from "../Settings.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { CurrentCaller } from "./Access.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { clusterBusy } from "./clusterErrors.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { recordAnswer } from "./measured.js"

/**
 * A ticket's answer, its JSON written as text (`ticketJson`, byte for byte what encoding a
 * `Ticket` writes): a ticket built here is valid by construction, so the two busiest endpoints
 * skip building and encoding one (the API test pins the bytes).
 */
export const ticketResponse = (ticket: TicketRow, base: string, status: 200 | 201) =>
  HttpServerResponse.text(ticketJson(ticket, base), { status, contentType: "application/json" })

/** What a refused purchase is answered with (the endpoint declares each). */
export type PurchaseError =
  | Exclude<BuyRefusal, { readonly _tag: "ConcertNotFound" | "JournalUnavailable" | keyof typeof clusterBusy }>
  | UnknownConcert
  | NotSaved
  | (typeof clusterBusy)[keyof typeof clusterBusy]

/**
 * The outcome of a purchase already made by `Purchases.route`, for the endpoint's handler to
 * answer as it answers any: set only around a refusal or a defect, which the API encodes.
 */
export const DecidedPurchase: FiberRef.FiberRef<Exit.Exit<HttpServerResponse.HttpServerResponse, PurchaseError> | undefined> =
  FiberRef.unsafeMake<Exit.Exit<HttpServerResponse.HttpServerResponse, PurchaseError> | undefined>(undefined)

/** The request's own fiber interrupted by the server: its client closed the connection. */
const clientWentAway = (cause: Cause.Cause<unknown>) =>
  Cause.isInterruptedOnly(cause) && HashSet.has(Cause.interruptors(cause), HttpServerError.clientAbortFiberId)

export class Purchases extends Effect.Service<Purchases>()("Purchases", {
  effect: Effect.gen(function*() {
    const users = yield* UserDirectory
    const baseUrl = yield* BaseUrl
    const sales = yield* ConcertSales
    const closedSales = yield* ClosedSales
    const knownConcerts = yield* KnownConcerts
    const purchaseTimeout = yield* purchaseTimeoutMillis
    const bodyLimit = yield* maxBodyBytes
    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)

    const orderOf = (concertId: ConcertId, userId: UserId, now: number, idempotencyKey: string | undefined): PurchaseOrder => ({
      ticketId: TicketId.make(newId(organiserOf(concertId))),
      userId,
      deadline: now + purchaseTimeout,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey })
    })

    /** A purchase's refusal as the buyer is answered it, and what it tells `closedSales`. */
    const answerTo = (concertId: ConcertId, refusal: BuyRefusal, now: number): PurchaseError => {
      switch (refusal._tag) {
        case "ConcertNotFound":
          return UnknownConcert.of(concertId)
        case "SoldOut":
          closedSales.note(concertId, "SoldOut", now, refusal.reopensAt)
          return refusal
        case "ConcertCancelled":
          closedSales.note(concertId, "Cancelled", now)
          return refusal
        case "JournalUnavailable":
          return new NotSaved({ message: "the purchase could not be saved; retry" })
        case "MailboxFull":
        case "AlreadyProcessingMessage":
        case "PersistenceError":
          return clusterBusy[refusal._tag]
        default:
          return refusal
      }
    }

    /**
     * The purchase the busiest way, or `undefined` when it must take the full path: the same
     * checks and answers, in two runtime steps instead of about seventy.
     */
    const now = (
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      concert: Named<ConcertId>,
      user: Named<UserId>,
      idempotencyKey: string | undefined,
      request: HttpServerRequest.HttpServerRequest
    ): Effect.Effect<HttpServerResponse.HttpServerResponse, PurchaseError> | undefined => {
      if (tracing || Either.isLeft(concert) || Either.isLeft(user) || !users.has(user.right)) return undefined
      const concertId = concert.right
      // The caller's organiser as `access.asBuyer` has it: the default one's concerts only.
      if (fiber.getFiberRef(CurrentCaller)._tag === "Organiser" || organiserOf(concertId) !== defaultOrganiser) return undefined
      if (!knownConcerts.known(concertId)) return undefined
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const now = clock.unsafeCurrentTimeMillis()
      if (idempotencyKey === undefined && closedSales.at(concertId, now) !== undefined) return undefined
      const started = performance.now()
      return Effect.async((resume) => {
        let gone = false
        sales.unsafeBuy(concertId, orderOf(concertId, user.right, now, idempotencyKey), (exit) => {
          if (gone) return
          // Run inside the entity's reply: whatever goes wrong here is this buyer's 500 alone.
          let answered: Exit.Exit<HttpServerResponse.HttpServerResponse, PurchaseError>
          try {
            answered = Exit.isSuccess(exit)
              ? Exit.succeed(ticketResponse(exit.value, baseUrl.of(request), 201))
              : Exit.failCause(Cause.map(exit.cause, (refusal) => answerTo(concertId, refusal, clock.unsafeCurrentTimeMillis())))
          } catch (defect) {
            answered = Exit.die(defect)
          }
          try {
            recordAnswer("purchase", concertId, answered, started)
          } finally {
            resume(answered)
          }
        })
        // A buyer who went away is answered nothing (and not counted); the order stands.
        return Effect.sync(() => {
          gone = true
        })
      })
    }

    const decodeKey = Schema.decodeUnknownEither(IdempotencyKey)

    /**
     * Whether `request` may be a plain purchase: exactly `POST /api/v1/tickets`, a JSON body of
     * a size the API reads, no organiser's API key, and an `Idempotency-Key` the endpoint would
     * accept if it has one. Anything else goes to the API's router.
     */
    const plain = (request: HttpServerRequest.HttpServerRequest) => {
      if (tracing || request.method !== "POST" || request.url !== "/api/v1/tickets") return false
      const headers = request.headers
      const key = headers["idempotency-key"]
      return headers["authorization"] === undefined &&
        (key === undefined || Either.isRight(decodeKey(key))) &&
        headers["content-type"]?.includes("application/json") === true &&
        Number(headers["content-length"] ?? "0") <= bodyLimit
    }

    /**
     * `app` with plain purchases answered ahead of it (`HttpApiBuilder.serve`'s middleware): the
     * body decoded with the endpoint's own schema, then the busiest way. A sale answers from
     * here; a refusal or a defect goes through `app` (`DecidedPurchase`), which answers it
     * exactly as it answers every other, and so does every request that is not a plain
     * purchase, a body that does not decode, a purchase that needs the full path.
     */
    const route = <E, R>(app: HttpApp.HttpApp<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
        const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
        if (!plain(request)) return app
        return Effect.matchEffect(request.text, {
          onFailure: () => app,
          onSuccess: (text) => {
            // A body that does not parse, and plain code that throws (it should not), leave the
            // request to the API, which answers both as always: nothing is bought before the
            // returned effect runs.
            let bought: ReturnType<typeof now>
            try {
              const payload = decodePurchase(JSON.parse(text))
              if (Either.isLeft(payload)) return app
              bought = now(fiber, payload.right.concert_id, payload.right.user_id, request.headers["idempotency-key"], request)
            } catch {
              return app
            }
            if (bought === undefined) return app
            Metrics.routedPurchases.unsafeUpdate(1, [])
            // The platform runs this middleware uninterruptibly (only the router's handlers are
            // not): the wait for the batch is made interruptible again, so that a buyer who goes
            // away is answered nothing and not counted, as in the handler.
            return Effect.catchAllCause(Effect.interruptible(bought), (cause) =>
              clientWentAway(cause)
                ? Effect.failCause(cause as Cause.Cause<never>) // interruptions only: no error in it
                : Effect.locally(app, DecidedPurchase, Exit.failCause(cause)))
          }
        })
      })

    return { orderOf, answerTo, now, route } as const
  }),
  dependencies: [UserDirectory.Default, BaseUrl.Default, ConcertSales.Default, ClosedSales.Default, KnownConcerts.Default]
}) {}
