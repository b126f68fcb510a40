-- Argo CD health check for sluice.dev/Rollout.
-- Healthy: stable, promoted; Progressing: a revision is being rolled out;
-- Suspended: paused, waiting for a human; Degraded: the last revision was rolled back.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the controller"
  return hs
end
local phase = obj.status.phase
local msg = obj.status.message or ""
if phase == "Idle" or phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Paused" then
  hs.status = "Suspended"
elseif phase == "Failed" then
  hs.status = "Degraded"
  if obj.status.abort ~= nil and obj.status.abort.reason ~= nil then
    msg = "rolled back: " .. obj.status.abort.reason
  end
elseif phase == "RollingBack" then
  hs.status = "Degraded"
else
  -- Initializing, Progressing, Promoting
  hs.status = "Progressing"
  if obj.status.canaryWeight ~= nil then
    msg = phase .. " at " .. tostring(obj.status.canaryWeight) .. "% canary traffic. " .. msg
  end
end
hs.message = msg
return hs
