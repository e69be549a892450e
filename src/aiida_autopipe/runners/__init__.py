"""Console scripts that CalcJobs execute on any Computer: files in, files out, no AiiDA import."""
