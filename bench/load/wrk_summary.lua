-- wrk script for bench/load/run: at the end, print the run's exact totals
-- as one JSON line (wrk's own summary rounds bytes to three digits).
-- summary.bytes counts response bytes, headers included, as received.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"bytes\":%d,\"duration_us\":%d," ..
    "\"err_connect\":%d,\"err_read\":%d,\"err_write\":%d,\"err_status\":%d,\"err_timeout\":%d," ..
    "\"lat_p50_us\":%d,\"lat_p99_us\":%d}\n",
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
