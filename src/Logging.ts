/**
 * The service's log: `LOG_FORMAT` (logfmt, json, pretty) at `LOG_LEVEL`, one line an event.
 * A warning or error that repeats (the database away, a cluster loop retrying every second) is
 * written once; its repeats within the next minute are counted and the count is written with
 * the next one after that minute, so an outage costs a few lines, not one stack trace a second.
 */
import { Config, HashMap, Layer, Logger, LogLevel } from "effect"

const window = 60_000

const text = (message: unknown): string =>
  Array.isArray(message) ? message.map(text).join(" ") : typeof message === "string" ? message : String(message)

export const deduplicated = <M>(logger: Logger.Logger<M, void>): Logger.Logger<M, void> => {
  const seen = new Map<string, { since: number; repeats: number }>()
  return Logger.make((options) => {
    if (LogLevel.lessThan(options.logLevel, LogLevel.Warning)) return logger.log(options)
    const key = `${options.logLevel.label} ${text(options.message)}`
    const now = options.date.getTime()
    const entry = seen.get(key)
    if (entry !== undefined && now - entry.since < window) {
      entry.repeats += 1
      return
    }
    if (seen.size > 1000) seen.clear()
    seen.set(key, { since: now, repeats: 0 })
    if (entry === undefined || entry.repeats === 0) return logger.log(options)
    return logger.log({ ...options, annotations: HashMap.set(options.annotations, "repeatedSinceLast", entry.repeats) })
  })
}

export const LoggingLive = Layer.unwrapEffect(
  Config.all({
    format: Config.literal("logfmt", "json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("logfmt")),
    level: Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))
  }).pipe(
    Config.map(({ format, level }) =>
      Layer.merge(
        Logger.replace(
          Logger.defaultLogger,
          deduplicated(
            format === "json"
              ? Logger.withConsoleLog(Logger.jsonLogger)
              : format === "pretty"
              ? Logger.prettyLoggerDefault
              : Logger.withConsoleLog(Logger.logfmtLogger)
          )
        ),
        Logger.minimumLogLevel(level)
      )
    )
  )
)
