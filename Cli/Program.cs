return Cnn.Cli.CommandLine.Run(args);
