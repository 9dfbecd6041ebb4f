"""The Discord adapter: the only code that imports discord. It calls bot.core for everything."""
