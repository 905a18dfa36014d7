/**
 * Who may do what (ONSALE.md §5). The `Authorization: Bearer` header says who is asking: an
 * organiser by its key, the operator by the `ADMIN_TOKEN`, or, without one, anyone. A token that
 * is neither is 401 before any handler runs.
 *
 * - Buyers' actions (buying, reserving, registering, reading or acting on a reservation,
 *   registration or ticket by its id, reading a concert, its sale settings or its plan) work
 *   without a key for any organiser's concert: the id says whose database to use. With a key,
 *   only that organiser's ids exist.
 * - Owners' actions (creating, changing and listing, the draw audit before the draw) act on the
 *   caller's own organiser: its key's, or the default organiser without a key (with the
 *   `ADMIN_TOKEN` when `OPEN_DEFAULT_ORGANISER=false`).
 *
 * Another organiser's id is answered exactly as an unknown one: the same status and body, and
 * without a database look-up in either case when the id's organiser is not the caller's.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Config, Effect, Either, FiberRef, Option } from "effect"
import { Unauthorized } from "../domain/Errors.js"
import type { Named } from "../domain/Ids.js"
import { CurrentOrganiser, defaultOrganiser, organiserOf } from "../domain/Organiser.js"
import { OrganiserDatabases } from "../sql/Organisers.js"

export type Caller =
  | { readonly _tag: "Anyone" }
  | { readonly _tag: "Admin" }
  | { readonly _tag: "Organiser"; readonly organiser: number }

const anyone: Caller = { _tag: "Anyone" }
const admin: Caller = { _tag: "Admin" }

/** The caller of the request this fiber answers, set by `CallersLive`. */
export const CurrentCaller: FiberRef.FiberRef<Caller> = FiberRef.unsafeMake<Caller>(anyone)

const idOf = (id: string | Named<string> | undefined): string | undefined =>
  id === undefined || typeof id === "string" ? id : Either.getOrUndefined(id)

export class Access extends Effect.Service<Access>()("Access", {
  effect: Effect.gen(function*() {
    const organisers = yield* OrganiserDatabases
    const openDefault = yield* Config.boolean("OPEN_DEFAULT_ORGANISER").pipe(Config.withDefault(true))

    /** The organiser the caller owns, or why it owns none. */
    const owned = (caller: Caller): Either.Either<number, Unauthorized> =>
      caller._tag === "Organiser"
        ? Either.right(caller.organiser)
        : caller._tag === "Admin" || openDefault
        ? Either.right(defaultOrganiser)
        : Either.left(Unauthorized.keyNeeded())

    return {
      /**
       * A buyer's action on what `id` names (a concert, ticket, reservation): run in that id's
       * organiser's database. With a key, another organiser's id is `notFound`.
       */
      asBuyer: <E2>(id: string | Named<string> | undefined, notFound: () => E2) =>
      <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
        Effect.flatMap(FiberRef.get(CurrentCaller), (caller): Effect.Effect<A, E | E2, R> => {
          const raw = idOf(id)
          if (caller._tag === "Organiser") {
            // An id that cannot be one goes to the handler, which answers it as unknown.
            if (raw !== undefined && organiserOf(raw) !== caller.organiser) return Effect.fail(notFound())
            return Effect.locally(self, CurrentOrganiser, caller.organiser)
          }
          const target = raw === undefined ? defaultOrganiser : organiserOf(raw)
          if (target === defaultOrganiser) return self
          return Effect.flatMap(
            Effect.orDie(organisers.exists(target)),
            (exists): Effect.Effect<A, E | E2, R> =>
              exists ? Effect.locally(self, CurrentOrganiser, target) : Effect.fail(notFound())
          )
        }),
      /**
       * An owner's action, on the caller's organiser (and on `id`, which must be that organiser's,
       * else `notFound`). Without a key it is the default organiser's, unless that is closed.
       */
      asOwner: <E2>(id: string | Named<string> | undefined, notFound: () => E2) =>
      <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2 | Unauthorized, R> =>
        Effect.flatMap(FiberRef.get(CurrentCaller), (caller): Effect.Effect<A, E | E2 | Unauthorized, R> => {
          const organiser = owned(caller)
          if (Either.isLeft(organiser)) return Effect.fail(organiser.left)
          const raw = idOf(id)
          if (raw !== undefined && organiserOf(raw) !== organiser.right) return Effect.fail(notFound())
          return organiser.right === defaultOrganiser ? self : Effect.locally(self, CurrentOrganiser, organiser.right)
        }),
      /** Reading what the caller's organiser lists publicly (its concerts): no key needed. */
      asCaller: <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        Effect.flatMap(FiberRef.get(CurrentCaller), (caller) =>
          caller._tag === "Organiser" ? Effect.locally(self, CurrentOrganiser, caller.organiser) : self),
      /** Whether the caller owns `organiser`'s data. */
      owns: (organiser: number): Effect.Effect<boolean> =>
        Effect.map(FiberRef.get(CurrentCaller), (caller) => {
          const own = owned(caller)
          return Either.isRight(own) && own.right === organiser
        }),
    } as const
  })
}) {}

const wrongKey = HttpServerResponse.unsafeJson(
  { error: "the API key is not valid" },
  { status: 401, headers: { "www-authenticate": "Bearer" } }
)

const operatorsOnly = HttpServerResponse.unsafeJson(
  { error: "this needs the ADMIN_TOKEN" },
  // A browser asks for it (any user name, the token as password) and sends it on each poll.
  { status: 401, headers: { "www-authenticate": "Basic realm=\"TicketOverflow operators\", charset=\"UTF-8\"" } }
)

/**
 * For what shows every organiser's figures (`/metrics`, `/dashboard`): when the service has an
 * `ADMIN_TOKEN`, only a request with it (as a bearer token, or as the password of HTTP Basic).
 */
export const operatorOnly = (adminConfigured: boolean) =>
<E, R>(
  self: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  adminConfigured
    ? Effect.flatMap(FiberRef.get(CurrentCaller), (caller) => caller._tag === "Admin" ? self : Effect.succeed(operatorsOnly))
    : self

/** The token of `Authorization: Bearer <token>`, or the password of `Authorization: Basic`. */
const tokenOf = (header: string): string | undefined => {
  const bearer = /^Bearer +(\S+) *$/i.exec(header)
  if (bearer !== null) return bearer[1]!
  const basic = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header)
  if (basic === null) return undefined
  const decoded = Buffer.from(basic[1]!, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  return colon < 0 || colon === decoded.length - 1 ? undefined : decoded.slice(colon + 1)
}

/**
 * Reads the caller from `Authorization: Bearer <token>` (or HTTP Basic, the token as the
 * password) once per request. A request without the header (every buyer's) costs one header read.
 */
export const CallersLive = HttpApiBuilder.middleware(
  Effect.gen(function*() {
    const organisers = yield* OrganiserDatabases
    return (app) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const header = request.headers["authorization"]
        if (header === undefined) return app
        const token = tokenOf(header)
        if (token === undefined) return Effect.succeed(wrongKey)
        return Effect.flatMap(Effect.orDie(organisers.authenticate(token)), Option.match({
          onNone: () => Effect.succeed(wrongKey),
          onSome: (who) =>
            Effect.locally(app, CurrentCaller, who === "admin" ? admin : { _tag: "Organiser", organiser: who })
        }))
      })
  })
)
