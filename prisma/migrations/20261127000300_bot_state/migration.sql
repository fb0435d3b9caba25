-- State that must survive a restart, such as the command-definition hash per application and scope.
CREATE TABLE IF NOT EXISTS bot_state (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz(6) NOT NULL DEFAULT now()
);
