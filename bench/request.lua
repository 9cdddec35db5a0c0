-- wrk script: one fixed request per workload, described by the arguments after "--".
--   wrk ... -s bench/request.lua URL -- METHOD API_KEY [BODY_FILE]
-- wrk builds the request once per thread after init(), from these wrk.* fields.
function init(args)
   wrk.method = args[1]
   wrk.headers["API-Key"] = args[2]
   if args[3] then
      local file = assert(io.open(args[3], "rb"))
      wrk.body = file:read("*a")
      file:close()
      wrk.headers["Content-Type"] = "application/json"
   end
end
