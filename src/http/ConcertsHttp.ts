import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Either, FiberRef, Layer, Option } from "effect"
import { Api } from "../domain/Api.js"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import {
  ConcertNotFound,
  NoDraw,
  NotSaved,
  PlanNotReady,
  QuantityOverLimit,
  RegistrationNotFound,
  Unauthorized,
  UnknownUser
} from "../domain/Errors.js"
import { type ConcertId, type Named, sent } from "../domain/Ids.js"
import { RegistrationId } from "../domain/Registration.js"
import { ConcertSales } from "../actors/ConcertSales.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { ReservationsRepo } from "../sql/ReservationsRepo.js"
import { saleSettings } from "../domain/Sale.js"
import { wholeQuantity } from "../domain/Reservation.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { Lru, SeatingPlans } from "../workers/SeatingPlans.js"
import { ClosedSales } from "./ClosedSales.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { clusterUnavailable } from "./clusterErrors.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { ListPages } from "./ListPages.js"
import { measured } from "./measured.js"
import { findOrNotFound } from "./lookup.js"
import { positiveInteger, purchaseTimeoutMillis } from "../Settings.js"
import { concertJson } from "../domain/Concert.js"
import { CurrentOrganiser, newId, organiserOf } from "../domain/Organiser.js"
import { OrganiserDatabases } from "../sql/Organisers.js"
import { Access } from "./Access.js"
import { withSpan } from "../Spans.js"

const notFound = (id: Named<ConcertId>) => () => ConcertNotFound.of(sent(id))

/**
 * Whether `Accept-Encoding` takes gzip: named (or `*`) with a weight above zero. `gzip;q=0`
 * refuses it (RFC 9110 12.5.3).
 */
const acceptsGzip = (header: string | undefined): boolean => {
  if (header === undefined) return false
  let any: boolean | undefined
  for (const part of header.split(",")) {
    const [name = "", ...params] = part.split(";").map((piece) => piece.trim().toLowerCase())
    const weight = params.find((param) => param.startsWith("q="))
    const accepted = weight === undefined || Number(weight.slice(2)) > 0
    if (name === "gzip" || name === "x-gzip") return accepted
    if (name === "*") any = accepted
  }
  return any ?? false
}

/** The gzipped plan's entity tag: the plain one's (a quoted string), marked. */
const gzipTag = (etag: string) => `${etag.slice(0, -1)}-gzip"`

export const ConcertsHttpLive = HttpApiBuilder.group(Api, "concerts", (handlers) =>
  Effect.gen(function*() {
    const concerts = yield* ConcertsRepo
    const health = yield* DatabaseHealth
    const concert = yield* ConcertEntity.client
    const closedSales = yield* ClosedSales
    const printQueue = yield* PrintQueue
    const seating = yield* SeatingPlans
    const knownConcerts = yield* KnownConcerts
    const reservations = yield* ReservationsRepo
    const users = yield* UserDirectory
    const sales = yield* ConcertSales
    const purchaseTimeout = yield* purchaseTimeoutMillis
    const listPages = yield* ListPages
    const listPageSize = yield* positiveInteger("TICKETS_PAGE_SIZE", 1000)
    const audits = new Lru<Uint8Array>(32 * 1024 * 1024)
    const access = yield* Access
    const organisers = yield* OrganiserDatabases

    return handlers
      .handle("health", () => health.check)
      .handle("list", () =>
        Effect.map(concerts.list(listPageSize, listPages.one), (pages) => jsonArrayResponse(pages, concertJson)).pipe(
          access.asCaller
        ))
      .handle("create", ({ payload }) =>
        Effect.gen(function*() {
          const organiser = yield* FiberRef.get(CurrentOrganiser)
          const created = yield* concerts.create(payload)
          // The directory says whose it is. Its id says so too, and is what every request goes
          // by: a failed entry is logged, not answered as a failure of the saved concert.
          yield* organisers.registerConcert(organiser, created.id).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("a concert could not be entered in the directory").pipe(
                Effect.annotateLogs({ concertId: created.id, organiser, error: String(error) })
              )
            )
          )
          knownConcerts.add(created.id)
          return created
        }).pipe(access.asOwner(undefined, Unauthorized.keyNeeded)))
      .handle("get", ({ path }) =>
        findOrNotFound(path.id, concerts.findById, ConcertNotFound.of).pipe(access.asBuyer(path.id, notFound(path.id))))
      .handle("update", ({ path, payload }) =>
        knownConcerts.require(path.id).pipe(
          access.asOwner(path.id, notFound(path.id)),
          Effect.flatMap((id) =>
            concert(id).Update(payload).pipe(
              Effect.tap((updated) => {
                closedSales.forget(id)
                return printQueue.concertChanged(id, updated.date)
              }),
              Effect.catchTags({
                JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the concert could not be saved; retry" })),
                ...clusterUnavailable
              }),
              withSpan("ConcertsHttp.update", { captureStackTrace: false, attributes: { concertId: id } })
            )
          )
        ))
      .handle("sale", ({ path }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          Effect.flatMap(reservations.sale(id), Option.match({
            onNone: () => Effect.fail(ConcertNotFound.of(id)),
            onSome: (sale) => Effect.succeed(saleSettings(id, sale))
          }))).pipe(access.asBuyer(path.id, notFound(path.id))))
      .handle("changeSale", ({ path, payload }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          concert(id).ChangeSale(payload).pipe(
            Effect.catchTags({
              JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the sale settings could not be saved; retry" })),
              ...clusterUnavailable
            })
          )).pipe(access.asOwner(path.id, notFound(path.id))))
      .handle("register", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = payload.user_id
          if (Either.isLeft(user) || !users.has(user.right)) return yield* UnknownUser.of(sent(user))
          const id = yield* knownConcerts.require(path.id)
          if (!wholeQuantity(payload.quantity)) return yield* QuantityOverLimit.outside(yield* reservations.maxPerReservation(id))
          const now = yield* Clock.currentTimeMillis
          const registered = yield* sales.register(id, {
            _tag: "Register",
            registrationId: RegistrationId.make(newId(organiserOf(id))),
            userId: user.right,
            quantity: payload.quantity,
            deadline: now + purchaseTimeout
          }).pipe(
            Effect.catchTags({
              ConcertNotFound: () => Effect.fail(ConcertNotFound.of(id)),
              JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the registration could not be saved; retry" })),
              ...clusterUnavailable
            })
          )
          // Only a place in line needs the database (it counts those ahead); a registration
          // before a draw, the bulk of the load, is answered from what the concert decided.
          const shown = registered.status === "WAITING"
            ? Option.getOrThrow(yield* reservations.registration(registered.id))
            : registered.toRegistration(null)
          return HttpServerResponse.unsafeJson(shown, { status: 201 })
        }).pipe(access.asBuyer(path.id, notFound(path.id)), measured("registration", Either.getOrUndefined(path.id))))
      .handle("registrations", ({ path }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          Effect.map(
            reservations.registrations(id, listPageSize, listPages.one),
            (pages) => jsonArrayResponse(pages, (registration) => JSON.stringify(registration))
          )).pipe(access.asOwner(path.id, notFound(path.id))))
      .handle("registration", ({ path }) =>
        Effect.gen(function*() {
          const id = yield* knownConcerts.require(path.id)
          const found = yield* findOrNotFound(path.rid, reservations.registration, RegistrationNotFound.of)
          if (found.concert_id !== id) return yield* RegistrationNotFound.of(sent(path.rid))
          return found
        }).pipe(access.asBuyer(path.id, notFound(path.id))))
      .handle("withdraw", ({ path }) =>
        Effect.gen(function*() {
          const id = yield* knownConcerts.require(path.id)
          const found = yield* findOrNotFound(path.rid, reservations.registration, RegistrationNotFound.of)
          if (found.concert_id !== id) return yield* RegistrationNotFound.of(sent(path.rid))
          yield* concert(id).Withdraw({ registrationId: found.id }).pipe(
            Effect.catchTags({
              JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the registration could not be withdrawn; retry" })),
              ...clusterUnavailable
            })
          )
          return Option.getOrThrow(yield* reservations.registration(found.id))
        }).pipe(access.asBuyer(path.id, notFound(path.id))))
      .handle("draw", ({ path }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) => {
          // A drawn concert's audit never changes: read and encoded once (its order can list
          // 100,000 registrations), then served as bytes to everyone who checks it.
          const cached = audits.get(id)
          if (cached !== undefined) return Effect.succeed(HttpServerResponse.uint8Array(cached, { contentType: "application/json" }))
          return Effect.flatMap(reservations.draw(id), Option.match({
            onNone: () => Effect.fail(NoDraw.of(id)),
            onSome: (audit) =>
              Effect.gen(function*(): Effect.fn.Return<HttpServerResponse.HttpServerResponse, ConcertNotFound | NoDraw> {
                // Before the draw, the audit (its commitment, the count registered) is the owner's.
                if (audit.drawn_at === null && !(yield* access.owns(organiserOf(id)))) return yield* ConcertNotFound.of(id)
                const bytes = new TextEncoder().encode(JSON.stringify(audit))
                if (audit.drawn_at !== null) audits.set(id, bytes, bytes.length)
                return HttpServerResponse.uint8Array(bytes, { contentType: "application/json" })
              })
          }))
        }).pipe(access.asBuyer(path.id, notFound(path.id))))
      .handle("seats", ({ path, request }) =>
        Effect.gen(function*() {
          // A concert seen once is known without a query: a plan reader polling costs one look-up.
          const id = yield* knownConcerts.require(path.id)
          const latest = yield* seating.latest(id)
          if (Option.isNone(latest)) return yield* PlanNotReady.of()
          const { etag, gzip } = latest.value
          const zipped = acceptsGzip(request.headers["accept-encoding"])
          // The gzipped plan is another representation: an entity tag of its own (RFC 9110 8.8.3).
          const tag = zipped ? gzipTag(etag) : etag
          const headers = { etag: tag, vary: "accept-encoding", "cache-control": "no-cache" }
          // Either representation's tag says the client holds this version of the plan; weak
          // comparison, as If-None-Match asks (a `W/` prefix a proxy added changes nothing).
          const matches = (request.headers["if-none-match"] ?? "").split(",").map((held) => held.trim().replace(/^W\//, ""))
          if (matches.includes(etag) || matches.includes(gzipTag(etag)) || matches.includes("*")) {
            return HttpServerResponse.empty({ status: 304, headers })
          }
          if (zipped) {
            return HttpServerResponse.uint8Array(gzip, {
              contentType: "image/svg+xml",
              headers: { ...headers, "content-encoding": "gzip" }
            })
          }
          const svg = yield* seating.svg(id, latest.value)
          return HttpServerResponse.stream(seating.paced(svg), {
            contentType: "image/svg+xml",
            contentLength: svg.length,
            headers
          })
        }).pipe(access.asBuyer(path.id, notFound(path.id))))
  })).pipe(
  Layer.provide([
    ConcertsRepo.Default,
    ReservationsRepo.Default,
    UserDirectory.Default,
    ConcertSales.Default,
    DatabaseHealth.Default,
    ClosedSales.Default,
    KnownConcerts.Default,
    ListPages.Default,
    SeatingPlans.Default,
    Access.Default
  ])
)
