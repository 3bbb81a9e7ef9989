int compute(int x)
{
	return x * 3 + 1;	/* VERSION */
}
