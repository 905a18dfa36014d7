import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Either, Layer, Option } from "effect"
import * as crypto from "node:crypto"
import { Api } from "../domain/Api.js"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import {
  ConcertNotFound,
  NoDraw,
  NotSaved,
  PlanNotReady,
  RegistrationNotFound,
  UnknownUser
} from "../domain/Errors.js"
import { sent } from "../domain/Ids.js"
import { RegistrationId } from "../domain/Registration.js"
import { ConcertSales } from "../actors/ConcertSales.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { ReservationsRepo } from "../sql/ReservationsRepo.js"
import { saleSettings } from "../domain/Sale.js"
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

    return handlers
      .handle("health", () => health.check)
      .handle("list", () => Effect.map(concerts.list(listPageSize, listPages.one), (pages) => jsonArrayResponse(pages, concertJson)))
      .handle("create", ({ payload }) => Effect.tap(concerts.create(payload), (created) => knownConcerts.add(created.id)))
      .handle("get", ({ path }) => findOrNotFound(path.id, concerts.findById, ConcertNotFound.of))
      .handle("update", ({ path, payload }) =>
        knownConcerts.require(path.id).pipe(
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
              Effect.withSpan("ConcertsHttp.update", { captureStackTrace: false, attributes: { concertId: id } })
            )
          )
        ))
      .handle("sale", ({ path }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          Effect.flatMap(reservations.sale(id), Option.match({
            onNone: () => Effect.fail(ConcertNotFound.of(id)),
            onSome: (sale) => Effect.succeed(saleSettings(id, sale))
          }))))
      .handle("changeSale", ({ path, payload }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          concert(id).ChangeSale(payload).pipe(
            Effect.catchTags({
              JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the sale settings could not be saved; retry" })),
              ...clusterUnavailable
            })
          )))
      .handle("register", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = payload.user_id
          if (Either.isLeft(user) || !users.has(user.right)) return yield* UnknownUser.of(sent(user))
          const id = yield* knownConcerts.require(path.id)
          const now = yield* Clock.currentTimeMillis
          const registered = yield* sales.register(id, {
            _tag: "Register",
            registrationId: RegistrationId.make(crypto.randomUUID()),
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
        }).pipe(measured("registration", Either.getOrUndefined(path.id))))
      .handle("registration", ({ path }) =>
        Effect.gen(function*() {
          const id = yield* knownConcerts.require(path.id)
          const found = yield* findOrNotFound(path.rid, reservations.registration, RegistrationNotFound.of)
          if (found.concert_id !== id) return yield* RegistrationNotFound.of(sent(path.rid))
          return found
        }))
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
        }))
      .handle("draw", ({ path }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) => {
          // A drawn concert's audit never changes: read and encoded once (its order can list
          // 100,000 registrations), then served as bytes to everyone who checks it.
          const cached = audits.get(id)
          if (cached !== undefined) return Effect.succeed(HttpServerResponse.uint8Array(cached, { contentType: "application/json" }))
          return Effect.flatMap(reservations.draw(id), Option.match({
            onNone: () => Effect.fail(NoDraw.of(id)),
            onSome: (audit) => {
              const bytes = new TextEncoder().encode(JSON.stringify(audit))
              if (audit.drawn_at !== null) audits.set(id, bytes, bytes.length)
              return Effect.succeed(HttpServerResponse.uint8Array(bytes, { contentType: "application/json" }))
            }
          }))
        }))
      .handle("seats", ({ path, request }) =>
        Effect.gen(function*() {
          // A concert seen once is known without a query: a plan reader polling costs one look-up.
          const id = yield* knownConcerts.require(path.id)
          const latest = yield* seating.latest(id)
          if (Option.isNone(latest)) return yield* PlanNotReady.of()
          const { etag, gzip } = latest.value
          const headers = { etag, vary: "accept-encoding", "cache-control": "no-cache" }
          const matches = (request.headers["if-none-match"] ?? "").split(",").map((tag) => tag.trim())
          if (matches.includes(etag) || matches.includes("*")) return HttpServerResponse.empty({ status: 304, headers })
          if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? "")) {
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
        }))
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
    SeatingPlans.Default
  ])
)
