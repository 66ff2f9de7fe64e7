"""The Lua side of the sandbox: what a script sees, and what it cannot reach.

Redis 7.0.15 gives a script exactly these globals: the base functions `assert error ipairs next
pairs pcall xpcall rawequal rawget rawset select setmetatable getmetatable tonumber tostring type
unpack gcinfo collectgarbage loadstring load _VERSION _G`, the tables `string table math
coroutine`, the libraries `cjson cmsgpack bit struct`, `redis`, `KEYS` and `ARGV`. No `os`,
`io`, `debug`, `require`, `package`, `dofile`, `loadfile`, `print`, `getfenv`, `setfenv`.
Redis patches its Lua so those tables are read-only in the VM; our Lua (lupa's, unpatched) gets
the same effect with proxies:

* every script runs with the environment `genv`, an empty proxy whose reads go to `env` (the
  whitelist above) and whose writes fail with Redis' "Attempt to modify a readonly table"; a
  missing global fails with "Script attempted to access nonexistent global variable";
* the library tables are proxies too, and `rawset`/`rawget`/`next`/`pairs`/`ipairs`/
  `setmetatable` see through (or refuse) proxies, so `rawset(_G, ...)` fails as in Redis;
* `loadstring`/`load` refuse precompiled chunks (unpatched Lua 5.1 bytecode can read and write
  memory: the sandbox escape Redis closed in 2015) and give what they load the script's
  environment, never the real globals;
* Python objects never reach a script: the bridge functions sit in upvalues of Lua wrappers,
  and the runtime's attribute filter refuses attribute access on any Python object anyway.

`debug.sethook` installs the count hook (see `engine.py`) on the main thread and on every
coroutine a script creates; a script cannot reach `debug` to remove it. Errors carry Redis'
shape: `error_handler` turns a string error into `{err='ERR ...'}` and adds the source and
line of the nearest user frame.
"""

from __future__ import annotations

#: Instructions between two calls of the count hook: about half a millisecond of pure Lua, so
#: the time check costs well under 1% and a runaway loop is noticed within a millisecond.
HOOK_INSTRUCTIONS = 100_000

#: Chunk name of user scripts: Lua prefixes errors with `user_script:<line>:` as Redis does.
SCRIPT_CHUNK_NAME = "@user_script"

PRELUDE = r"""
local bridge, hook_every = ...
local real = _G
local error, type, tostring, select, xpcall = error, type, tostring, select, xpcall
local rawget_, rawset_, next_, pairs_, ipairs_ = rawget, rawset, next, pairs, ipairs
local setmetatable_, getmetatable_ = setmetatable, getmetatable
local loadstring_, setfenv_, concat = loadstring, setfenv, table.concat
local getinfo, sethook = debug.getinfo, debug.sethook

local backing = setmetatable_({}, {__mode = 'k'})  -- proxy -> the table it protects

local function readonly_error() error('Attempt to modify a readonly table', 2) end

local function protect(t)
  local proxy = setmetatable_({}, {__index = t, __newindex = readonly_error,
                                   __metatable = false})
  backing[proxy] = t
  return proxy
end

local env = {}
local genv = setmetatable_({}, {__index = env, __newindex = readonly_error,
                                __metatable = false})
backing[genv] = env
setmetatable_(env, {__index = function(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end})

for _, name in ipairs_({'assert', 'error', 'rawequal', 'select',
                        'tonumber', 'tostring', 'type', 'unpack', 'gcinfo', 'collectgarbage',
                        'getmetatable', '_VERSION'}) do
  env[name] = real[name]
end

local function seen(t) return backing[t] or t end
env.rawget = function(t, k) return rawget_(seen(t), k) end
env.next = function(t, k) return next_(seen(t), k) end
env.pairs = function(t) return pairs_(seen(t)) end
env.ipairs = function(t) return ipairs_(seen(t)) end
env.rawset = function(t, k, v)
  if backing[t] then error('Attempt to modify a readonly table', 0) end
  return rawset_(t, k, v)
end
env.setmetatable = function(t, mt)
  if backing[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable_(t, mt)
end

local function no_bytecode(code)
  return type(code) == 'string' and code:byte(1) == 27
end
env.loadstring = function(code, name)
  if no_bytecode(code) then return nil, 'loading precompiled chunks is not allowed' end
  local f, err = loadstring_(code, name)
  if f then setfenv_(f, genv) end
  return f, err
end
env.load = function(reader, name)
  local parts = {}
  if type(reader) == 'string' then parts[1] = reader else
    while true do
      local piece = reader()
      if piece == nil or piece == '' then break end
      parts[#parts + 1] = piece
    end
  end
  return env.loadstring(concat(parts), name)
end

getmetatable_('').__metatable = false  -- scripts cannot reach (and change) the string table
for _, name in ipairs_({'string', 'table'}) do
  env[name] = protect(real[name])
end

-- math.random and math.randomseed are Redis' (rand48.py): the same numbers as redis-server.
local math_ = {}
for k, v in pairs_(real.math) do math_[k] = v end
math_.random, math_.randomseed = bridge.math_random, bridge.math_randomseed
env.math = protect(math_)

-- The count hook (see engine.py): the time limit and SCRIPT KILL. A Lua hook function is
-- kept per thread, so every coroutine a script creates gets it too, or a loop inside a
-- coroutine would escape both.
local pyhook = bridge.hook
local function count_hook()
  local verdict = pyhook()
  if verdict then error({err = verdict}) end
end
local co_create, co_resume = coroutine.create, coroutine.resume
local function hooked(co)
  sethook(co, count_hook, '', hook_every)
  return co
end
local function wrapped_result(ok, ...)
  if ok then return ... end
  error((...), 0)
end
local co = {}
for name, f in pairs_(coroutine) do co[name] = f end
local stopping = bridge.stopping
local function resumed(ok, ...)
  if not ok then  -- like pcall, resume must not let a killed script catch its end
    local reason = stopping()
    if reason then error({err = reason}) end
  end
  return ok, ...
end
co.create = function(f) return hooked(co_create(f)) end
co.resume = function(thread, ...) return resumed(co_resume(thread, ...)) end
co.wrap = function(f)
  local thread = hooked(co_create(f))
  return function(...) return wrapped_result(resumed(co_resume(thread, ...))) end
end
env.coroutine = protect(co)
env._G = genv

-- The libraries Redis loads. Their functions are the Python bridges themselves (C functions
-- to Lua, see libs.py): a tail call to one keeps the script's frame, so errors name its line.
env.cjson = protect({encode = bridge.cjson_encode, decode = bridge.cjson_decode,
                     null = bridge.cjson_null})
local bit = {}
for _, name in ipairs_({'tobit', 'tohex', 'bnot', 'band', 'bor', 'bxor', 'lshift', 'rshift',
                        'arshift', 'rol', 'ror', 'bswap'}) do
  bit[name] = bridge['bit_' .. name]
end
env.bit = protect(bit)
env.cmsgpack = protect({pack = bridge.msgpack_pack, unpack = bridge.msgpack_unpack})
env.struct = protect({pack = bridge.struct_pack, unpack = bridge.struct_unpack,
                      size = bridge.struct_size})

-- redis.*
local redis = {call = bridge.call, pcall = bridge.pcall, sha1hex = bridge.sha1hex}

local function error_table(text)
  if text:sub(1, 1) == '-' then text = text:sub(2) end
  local space = text:find(' ', 1, true)
  if space == nil then return {err = 'ERR ' .. text} end
  return {err = text}
end
redis.error_reply = function(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return error_table(text)
end
redis.status_reply = function(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = text}
end
redis.log, redis.setresp, redis.set_repl = bridge.log, bridge.setresp, bridge.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL =
  0, 1, 2, 2, 3
redis.REDIS_VERSION = bridge.version
redis.REDIS_VERSION_NUM = bridge.version_num
env.redis = protect(redis)

-- Errors: Redis' __redis__err__handler. The place is the nearest frame of user code (our
-- wrappers are Lua functions where Redis' are C). A bridge's failure arrives as a Python
-- exception; `unwrap` gives its text and whether it is a reply error ({err=text}) or a
-- library error (a message that gets the script's position, as luaL_error gives it).
local unwrap = bridge.unwrap
local function user_frame()
  local level = 3
  while true do
    local info = getinfo(level, 'Sl')
    if info == nil then return nil end
    if info.what ~= 'C' and info.source:sub(1, 1) == '@' then return info end
    level = level + 1
  end
end

local function error_handler(err)
  local where = user_frame()
  if type(err) == 'userdata' then
    local text, is_reply = unwrap(err)
    if text ~= nil then
      if is_reply then err = {err = text} else
        if where then text = where.short_src .. ':' .. where.currentline .. ': ' .. text end
        err = {err = 'ERR ' .. text}
      end
    end
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if where then
    err.source = where.source
    err.line = where.currentline
  end
  return err
end

-- What a script's own pcall sees of an error: a string, as in Redis 7.0, whose pcall turns
-- error tables into their text for scripts written before errors were tables.
local function lua_error_value(err)
  if type(err) == 'userdata' then
    local text = unwrap(err)
    if text ~= nil then return text end
  end
  return err
end
local pcall_ = pcall
local function caught(ok, ...)
  if ok then return ok, ... end
  local reason = stopping()  -- a killed script cannot catch its own end
  if reason then error({err = reason}) end
  local err = lua_error_value((...))
  if type(err) == 'table' and type(rawget_(err, 'err')) == 'string' then err = err.err end
  return false, err
end
env.pcall = function(f, ...) return caught(pcall_(f, ...)) end
env.xpcall = function(f, handler)
  return caught(xpcall(f, function(err) return handler(lua_error_value(err)) end))
end

sethook(count_hook, '', hook_every)

local chunk_name = bridge.chunk_name
local function compile(body)
  local f, err = loadstring_(body, chunk_name)
  if f == nil then return nil, err end
  setfenv_(f, genv)
  return f, nil
end

local function first_two(ok, result) return ok, result end  -- a reply is one value

local function run_with(f, keys, argv)
  rawset_(env, 'KEYS', keys)
  rawset_(env, 'ARGV', argv)
  return first_two(xpcall(f, error_handler))
end

local unpack_ = unpack
local function run(f, nkeys, ...)  -- KEYS and ARGV as one argument list: no table crossings
  local all = {...}
  return run_with(f, {unpack_(all, 1, nkeys)}, {unpack_(all, nkeys + 1, select('#', ...))})
end

-- Redis 7 functions (see functions.py). A library's code runs once, at FUNCTION LOAD, in an
-- environment of its own whose globals are switched as Redis switches them: while it loads,
-- only `redis.register_function`, `redis.log`, the log levels and the version exist; once
-- loaded, its functions see the scripts' globals, without KEYS and ARGV (a function gets
-- its keys and arguments as parameters).
local function missing_global(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
local run_api = setmetatable_({}, {__index = function(_, name)
  local value = nil
  if name ~= 'KEYS' and name ~= 'ARGV' then value = rawget_(env, name) end
  if value == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'",
          2)
  end
  return value
end})
local registered = nil  -- the load in progress: its functions, in order
local flag_names = {}
for _, name in ipairs_(bridge.function_flags) do flag_names[name] = name end

local function fail(text) error({err = 'ERR ' .. text}) end
local function is_string(v) return type(v) == 'string' or type(v) == 'number' end

local function read_flags(t)
  local flags, j = {}, 1
  while true do
    local flag = t[j]
    if flag == nil then return flags end
    if not is_string(flag) then return nil end
    flag = flag_names[tostring(flag):lower()]
    if flag == nil then return nil end
    flags[#flags + 1] = flag
    j = j + 1
  end
end

local function named_args(t)  -- luaRegisterFunctionReadNamedArgs
  if type(t) ~= 'table' then
    fail('calling redis.register_function with a single argument is only applicable to Lua '
         .. 'table (representing named arguments).')
  end
  local name, callback, description, flags = nil, nil, nil, {}
  for key, value in next_, t do
    if not is_string(key) then
      fail('named argument key given to redis.register_function is not a string')
    end
    key = tostring(key):lower()
    if key == 'function_name' then
      if not is_string(value) then
        fail('function_name argument given to redis.register_function must be a string')
      end
      name = tostring(value)
    elseif key == 'description' then
      if not is_string(value) then
        fail('description argument given to redis.register_function must be a string')
      end
      description = tostring(value)
    elseif key == 'callback' then
      if type(value) ~= 'function' then
        fail('callback argument given to redis.register_function must be a function')
      end
      callback = value
    elseif key == 'flags' then
      if type(value) ~= 'table' then
        fail('flags argument to redis.register_function must be a table representing '
             .. 'function flags')
      end
      flags = read_flags(value)
      if flags == nil then fail('unknown flag given') end
    else
      fail('unknown argument given to redis.register_function')
    end
  end
  if name == nil then fail('redis.register_function must get a function name argument') end
  if callback == nil then fail('redis.register_function must get a callback argument') end
  return name, callback, description, flags
end

local function register_function(...)
  if registered == nil then
    fail('redis.register_function can only be called on FUNCTION LOAD command')
  end
  local n = select('#', ...)
  local name, callback, description, flags
  if n == 1 then
    name, callback, description, flags = named_args((...))
  elseif n == 2 then
    local first, second = ...
    if not is_string(first) then
      fail('first argument to redis.register_function must be a string')
    end
    if type(second) ~= 'function' then
      fail('second argument to redis.register_function must be a function')
    end
    name, callback, description, flags = tostring(first), second, nil, {}
  else
    fail('wrong number of arguments to redis.register_function')
  end
  if not name:find('^[%w_]+$') then  -- Redis 7.0 says "Library" here too
    fail('Library names can only contain letters, numbers, or underscores(_) and must be at '
         .. 'least one character long')
  end
  for _, f in ipairs_(registered) do
    if f.name == name then fail('Function already exists in the library') end
  end
  registered[#registered + 1] = {name = name, callback = callback, description = description,
                                 flags = flags}
end

local load_redis = setmetatable_({register_function = register_function, log = bridge.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = bridge.version, REDIS_VERSION_NUM = bridge.version_num},
  {__index = missing_global})
local load_api = setmetatable_({redis = protect(load_redis)}, {__index = missing_global})
local fenv_meta = {__index = run_api, __newindex = readonly_error, __metatable = false}
local fenv = setmetatable_({}, fenv_meta)
backing[fenv] = run_api

local function load_library(code)
  local f, err = loadstring_(code, '@user_function')
  if f == nil then return nil, err end
  setfenv_(f, fenv)
  registered = {}
  fenv_meta.__index = load_api
  local ok, failure = xpcall(f, error_handler)
  fenv_meta.__index = run_api
  local functions = registered
  registered = nil
  if not ok then return false, failure end
  return true, functions
end

local function call_function(f, keys, argv)
  return first_two(xpcall(function() return f(keys, argv) end, error_handler))
end

return compile, run, run_with, load_library, call_function
"""
