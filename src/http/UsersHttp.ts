import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Option } from "effect"
import { Api } from "../domain/Api.js"
import { UserNotFound } from "../domain/Errors.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { UserDirectory } from "../sql/UserDirectory.js"

export const UsersHttpLive = HttpApiBuilder.group(Api, "users", (handlers) =>
  Effect.gen(function*() {
    const users = yield* UserDirectory
    const health = yield* DatabaseHealth
    return handlers
      .handle("health", () => health.check)
      .handle("list", () => Effect.succeed(HttpServerResponse.uint8Array(users.listBytes, { contentType: "application/json" })))
      .handle("get", ({ path }) =>
        Option.match(users.find(path.id), {
          onNone: () => Effect.fail(UserNotFound.of(path.id)),
          onSome: Effect.succeed
        }))
  })).pipe(Layer.provide([UserDirectory.Default, DatabaseHealth.Default]))
